/* vggeo map page: MapLibre GL (served locally) with the style from /style.json — the data over
   the offline basemap, or over an external basemap style when the server names one.
   Filters: a store-backed server filters tiles (the source is re-pointed at a filtered
   TileJSON, /tiles/composite.json?home_type=…); a tile archive cannot, so the map filters what
   it draws (/layers says which: "filter_mode"). */
"use strict";

const HOME_COLOURS = {
  "villa": "#1b9e77", "radhus": "#66a61e", "kedjehus": "#a6d854", "lägenhet": "#d95f02",
  "småhus övriga": "#7570b3", "lantbruk": "#a6761d", "lantbruk övriga": "#e6ab02", "okänd": "#999999",
};
const PROVISION_COLOURS = {
  "plan": "#3182bd", "naturvardsbestammelse": "#31a354", "ovrig_bestammelse": "#756bb1",
  "mineralrattighet": "#636363", "utredning": "#e6550d", "fornlamning": "#b15928",
};
const SET_FILTERS = ["home_type", "ownership_type", "provision_type", "status"];
let INTERACTIVE = ["residences-points", "residences-clusters", "regulations-fill"];

const map = new maplibregl.Map({
  container: "map", center: [15.5, 60.5], zoom: 4, hash: true,
  attributionControl: { compact: false },
});
window.vggeoMap = map;
window.vggeoTilesLoaded = 0;
map.addControl(new maplibregl.NavigationControl(), "top-left");
map.addControl(new maplibregl.ScaleControl(), "bottom-left");
map.on("data", (e) => { if (e.dataType === "source" && e.tile) window.vggeoTilesLoaded += 1; });

/* The data style, drawn on an external basemap style when the server names one. */
fetch("/style.json").then((r) => r.json()).then((style) => {
  const meta = style.metadata || {};
  INTERACTIVE = meta["vggeo:interactive"] || INTERACTIVE;
  const basemap = meta["vggeo:basemap"];
  if (basemap && basemap !== "builtin" && basemap !== "none") {
    map.setStyle(basemap, {
      transformStyle: (_previous, ext) => ({
        ...ext,
        sources: { ...ext.sources, ...style.sources },
        layers: [...ext.layers, ...style.layers],
      }),
    });
  } else {
    map.setStyle(style);
  }
});

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function popupHtml(f) {
  const p = f.properties;
  const title = f.layer.id.startsWith("regulations") ? `${p.provision_type || "provision"} ${p.designation || ""}`
    : p.cluster ? `${p.point_count} residences` : `Residence ${p.id}`;
  const rows = Object.keys(p).filter((k) => k !== "cluster")
    .map((k) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(p[k])}</td></tr>`).join("");
  return `<strong>${escapeHtml(title)}</strong><table>${rows}</table>`;
}

let hovered = null;
function setHover(f) {
  if (hovered) map.setFeatureState(hovered, { hover: false });
  hovered = f ? { source: "vggeo", sourceLayer: f.sourceLayer, id: f.id } : null;
  if (hovered && hovered.id !== undefined) map.setFeatureState(hovered, { hover: true });
}

map.once("load", () => {
  for (const id of INTERACTIVE.filter((i) => map.getLayer(i))) {
    map.on("mousemove", id, (e) => { map.getCanvas().style.cursor = "pointer"; setHover(e.features[0]); });
    map.on("mouseleave", id, () => { map.getCanvas().style.cursor = ""; setHover(null); });
  }
  map.on("click", (e) => {
    const layers = INTERACTIVE.filter((id) => map.getLayer(id));
    const feats = map.queryRenderedFeatures(e.point, { layers });
    if (!feats.length) return;
    new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(e.lngLat).setHTML(popupHtml(feats[0])).addTo(map);
    if (feats[0].properties.cluster) map.easeTo({ center: e.lngLat, zoom: map.getZoom() + 2 });
  });
  window.vggeoReady = true;
});

function legend() {
  const row = (colour, label, cls, extra = "") =>
    `<div class="legend-row"><span class="swatch ${cls}" style="background:${colour};${extra}"></span>${escapeHtml(label)}</div>`;
  const parts = ["<h2>Residences</h2><div class=\"legend-grid\">"];
  for (const [k, c] of Object.entries(HOME_COLOURS)) parts.push(row(c, k, "dot"));
  parts.push("</div>");
  parts.push(`<div class="legend-row wrap"><span class="swatch cluster">12</span>cluster of homes, with their number (click to zoom in)</div>`);
  parts.push("<h2>Regulations</h2><div class=\"legend-grid\">");
  for (const [k, c] of Object.entries(PROVISION_COLOURS)) parts.push(row(c, k, "", "opacity:.6"));
  parts.push("</div>");
  document.getElementById("legend-body").innerHTML = parts.join("");
}
legend();

function checkboxes(name, values) {
  const box = document.getElementById(`f-${name}`);
  box.innerHTML = (values || []).map((v) =>
    `<label><input type="checkbox" name="${name}" value="${escapeHtml(v)}">${escapeHtml(v)}</label>`).join("");
}

function checked(name) {
  return [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
}

function query() {
  const q = new URLSearchParams();
  for (const name of SET_FILTERS) {
    const vals = checked(name);
    if (vals.length) q.set(name, vals.join(","));
  }
  const lo = document.getElementById("f-year-min").value, hi = document.getElementById("f-year-max").value;
  if (lo) q.set("construction_year_min", lo);
  if (hi) q.set("construction_year_max", hi);
  return q.toString();
}

/* Server-side filtering: re-point the source at a filtered TileJSON (exact cluster counts). */
async function applyServerFilters(layerId) {
  const q = query();
  const url = `${location.origin}/tiles/${layerId}.json${q ? "?" + q : ""}`;
  const err = document.getElementById("f-error");
  const r = await fetch(url);
  if (!r.ok) { err.textContent = (await r.json()).detail; return; }
  err.textContent = "";
  map.getSource("vggeo").setUrl(url);
}

/* Client-side filtering (tile archives): filter what is drawn. A cluster counts the selected
   home types through its count_<home type> fields, so counts stay exact at every zoom. */
function applyClientFilters(countFields) {
  const homes = checked("home_type"), types = checked("provision_type"), status = checked("status");
  const count = homes.length
    ? ["+", 0, ...homes.map((h) => ["coalesce", ["get", countFields[h] || ""], 0])]
    : ["get", "point_count"];
  const set = (id, filter) => { if (map.getLayer(id)) map.setFilter(id, filter); };
  const isCluster = ["has", "point_count"];
  set("residences-points", ["all", ["!", isCluster],
    ...(homes.length ? [["in", ["get", "home_type"], ["literal", homes]]] : [])]);
  set("residences-clusters", ["all", isCluster, [">", count, 0]]);
  set("residences-cluster-count", ["all", isCluster, [">", count, 0]]);
  if (map.getLayer("residences-clusters")) {
    map.setPaintProperty("residences-clusters", "circle-radius",
      ["interpolate", ["linear"], ["ln", ["max", count, 1]], 0.6, 8, 12, 26]);
  }
  if (map.getLayer("residences-cluster-count")) {
    map.setLayoutProperty("residences-cluster-count", "text-field", ["case",
      [">=", count, 10000], ["concat", ["to-string", ["round", ["/", count, 1000]]], "k"],
      [">=", count, 1000], ["concat", ["number-format", ["/", count, 1000], { "locale": "en", "max-fraction-digits": 1 }], "k"],
      ["to-string", count]]);
  }
  const regs = ["all",
    ...(types.length ? [["in", ["get", "provision_type"], ["literal", types]]] : []),
    ...(status.length ? [["in", ["get", "status"], ["literal", status]]] : [])];
  set("regulations-fill", regs);
  set("regulations-line", regs);
}

fetch("/layers").then((r) => r.json()).then((doc) => {
  const drawn = doc.layers.find((l) => l.id === "composite") || doc.layers[0];
  const filters = drawn ? drawn.filters : {};
  const client = doc.filter_mode === "client";
  for (const name of SET_FILTERS) {
    const offered = name in filters;
    document.getElementById(`fs-${name}`).hidden = !offered;
    if (offered) checkboxes(name, filters[name]);
  }
  const years = "construction_year_min" in filters;
  document.getElementById("fs-year").hidden = !years;
  document.getElementById("f-note").hidden = !client;
  const apply = client ? () => applyClientFilters(doc.cluster_count_fields || {})
    : () => applyServerFilters(drawn.id);
  document.getElementById("filters").addEventListener("change", apply);
  document.getElementById("f-reset").addEventListener("click", () => {
    document.getElementById("filters").reset(); apply();
  });
  window.vggeoFilterMode = doc.filter_mode;
});
