/* vggeo map page: MapLibre GL (served locally), style from /style.json, filters re-point the
   tile source at a filtered TileJSON (/tiles/composite.json?home_type=…). */
"use strict";

const HOME_COLOURS = {
  "villa": "#1b9e77", "radhus": "#66a61e", "kedjehus": "#a6d854", "lägenhet": "#d95f02",
  "småhus övriga": "#7570b3", "lantbruk": "#a6761d", "lantbruk övriga": "#e6ab02", "okänd": "#999999",
};
const PROVISION_COLOURS = {
  "plan": "#3182bd", "naturvardsbestammelse": "#31a354", "ovrig_bestammelse": "#756bb1",
  "mineralrattighet": "#636363", "utredning": "#e6550d", "fornlamning": "#b15928",
};
const INTERACTIVE = ["residences-points", "residences-clusters", "regulations-fill"];

const map = new maplibregl.Map({
  container: "map", style: "/style.json", center: [15.5, 60.5], zoom: 4, hash: true,
});
window.vggeoMap = map;
window.vggeoTilesLoaded = 0;
map.addControl(new maplibregl.NavigationControl(), "top-left");
map.addControl(new maplibregl.ScaleControl(), "bottom-left");
map.on("data", (e) => { if (e.dataType === "source" && e.tile) window.vggeoTilesLoaded += 1; });

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

map.on("load", () => {
  for (const id of INTERACTIVE) {
    map.on("mousemove", id, (e) => { map.getCanvas().style.cursor = "pointer"; setHover(e.features[0]); });
    map.on("mouseleave", id, () => { map.getCanvas().style.cursor = ""; setHover(null); });
  }
  map.on("click", (e) => {
    const feats = map.queryRenderedFeatures(e.point, { layers: INTERACTIVE });
    if (!feats.length) return;
    new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(e.lngLat).setHTML(popupHtml(feats[0])).addTo(map);
    if (feats[0].properties.cluster) map.easeTo({ center: e.lngLat, zoom: map.getZoom() + 2 });
  });
  window.vggeoReady = true;
});

function legend() {
  const rows = [];
  rows.push("<div><em>Residences</em></div>");
  for (const [k, c] of Object.entries(HOME_COLOURS))
    rows.push(`<div class="legend-row"><span class="swatch dot" style="background:${c}"></span>${escapeHtml(k)}</div>`);
  rows.push(`<div class="legend-row"><span class="swatch dot" style="background:#3f4a5c;opacity:.7"></span>cluster of homes (area grows with log count; click to zoom)</div>`);
  rows.push("<div><em>Regulations</em></div>");
  for (const [k, c] of Object.entries(PROVISION_COLOURS))
    rows.push(`<div class="legend-row"><span class="swatch" style="background:${c};opacity:.6"></span>${escapeHtml(k)}</div>`);
  document.getElementById("legend").innerHTML = rows.join("");
}
legend();

function checkboxes(name, values) {
  const box = document.getElementById(`f-${name}`);
  box.innerHTML = (values || []).map((v) =>
    `<label><input type="checkbox" name="${name}" value="${escapeHtml(v)}">${escapeHtml(v)}</label>`).join("");
}

function query() {
  const q = new URLSearchParams();
  for (const name of ["home_type", "ownership_type", "provision_type", "status"]) {
    const vals = [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
    if (vals.length) q.set(name, vals.join(","));
  }
  const lo = document.getElementById("f-year-min").value, hi = document.getElementById("f-year-max").value;
  if (lo) q.set("construction_year_min", lo);
  if (hi) q.set("construction_year_max", hi);
  return q.toString();
}

async function applyFilters() {
  const q = query();
  const url = `${location.origin}/tiles/composite.json${q ? "?" + q : ""}`;
  const err = document.getElementById("f-error");
  const r = await fetch(url);
  if (!r.ok) { err.textContent = (await r.json()).detail; return; }
  err.textContent = "";
  map.getSource("vggeo").setUrl(url);
}

fetch("/layers").then((r) => r.json()).then((doc) => {
  const comp = doc.layers.find((l) => l.id === "composite");
  for (const name of ["home_type", "ownership_type", "provision_type", "status"]) checkboxes(name, comp.filters[name]);
  document.getElementById("filters").addEventListener("change", applyFilters);
  document.getElementById("f-reset").addEventListener("click", () => {
    document.getElementById("filters").reset(); applyFilters();
  });
});
