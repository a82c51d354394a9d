/* vggeo map page: an API key for servers with access control.
   Loaded before app.js. When the server answers 401 (residences need a key, or the one given is
   not valid), a small form asks for a key; it is kept for this browser tab (sessionStorage) and
   sent as the X-API-Key header — never in a URL, so it stays out of histories and proxy logs —
   on every request to this server: the page's own fetch() calls and MapLibre's style, TileJSON
   and tile requests (transformRequest). Requests to other hosts (an external basemap) never get
   it. Without access control nothing of this shows. */
"use strict";

(function () {
  const STORE = "vggeo-api-key";
  const sameOrigin = (url) => new URL(url, location.href).origin === location.origin;
  const key = () => sessionStorage.getItem(STORE);

  function withKey(url, headers) {
    const k = key();
    return k && sameOrigin(url) ? { ...(headers || {}), "X-API-Key": k } : headers;
  }

  /* MapLibre: every request it makes goes through transformRequest. */
  function transformRequest(url) {
    const headers = withKey(url);
    return headers ? { url, headers } : { url };
  }

  /* The page's own requests (/layers, /style.json, filtered TileJSON). */
  const baseFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    const headers = withKey(url, Object.fromEntries(new Headers((init || {}).headers || {})));
    const r = await baseFetch(input, headers ? { ...(init || {}), headers } : init);
    if (r.status === 401 && sameOrigin(url)) ask(r);
    return r;
  };

  /* app.js builds the map with `new maplibregl.Map(options)`: give every map our
     transformRequest without app.js having to know about keys. */
  if (window.maplibregl) {
    const Base = window.maplibregl.Map;
    window.maplibregl.Map = class extends Base {
      constructor(options) {
        super({ transformRequest, ...options });
      }
    };
  }

  let shown = false;
  function ask(response) {
    if (shown) return;
    shown = true;
    const invalid = (response.headers.get("WWW-Authenticate") || "").includes("invalid_token");
    const box = document.createElement("form");
    box.id = "vggeo-key";
    box.setAttribute("style", "position:absolute;z-index:10;left:10px;bottom:40px;" +
      "background:#fff;border:1px solid #bbb;border-radius:6px;padding:10px 12px;" +
      "box-shadow:0 2px 10px rgba(0,0,0,.2);font:13px system-ui,sans-serif;width:280px");
    box.innerHTML = `<strong>${invalid ? "This API key is not accepted." : "Residences need an API key."}</strong>
      <p style="margin:6px 0 8px;color:#555">It is kept for this tab only and sent to this server only.</p>
      <input id="vggeo-key-input" type="password" autocomplete="off" spellcheck="false"
        placeholder="vgk_…" style="width:100%;box-sizing:border-box;margin-bottom:8px">
      <button type="submit">Use key</button>
      ${key() ? '<button type="button" id="vggeo-key-forget">Forget key</button>' : ""}`;
    box.addEventListener("submit", (e) => {
      e.preventDefault();
      const value = document.getElementById("vggeo-key-input").value.trim();
      if (value) sessionStorage.setItem(STORE, value);
      location.reload();
    });
    document.body.appendChild(box);
    const forget = document.getElementById("vggeo-key-forget");
    if (forget) forget.addEventListener("click", () => { sessionStorage.removeItem(STORE); location.reload(); });
  }

  /* Whether this server wants a key for what the map shows: the residences' TileJSON answers
     401 to a caller without one (200 without access control, 404 for a store without them). */
  document.addEventListener("DOMContentLoaded", () => { window.fetch("/tiles/residences.json"); });

  window.vggeoAuth = { transformRequest, ask, key };
})();
