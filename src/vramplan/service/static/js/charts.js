// Chart.js (vendored, /static/vendor) behind one function; a redraw replaces the old chart.
"use strict";
import { el } from "./dom.js";

const charts = new Map();
export const COLOURS = { weights: "#4e79a7", kv_cache: "#f28e2b", activations: "#59a14f", overhead: "#bab0ac", free: "#e9edf1",
  gradients: "#e15759", optimizer: "#76b7b2" };

/** A titled chart box; the canvas gets a text alternative (``summary``) for screen readers. */
export function chartBox(id, title, summary) {
  return el("figure", { class: "chart-box" }, el("figcaption", null, title),
    el("div", { class: "chart" }, el("canvas", { id, role: "img", "aria-label": summary || title })));
}

export function draw(id, config) {
  if (charts.has(id)) charts.get(id).destroy();
  const canvas = document.getElementById(id);
  if (!canvas || typeof window.Chart === "undefined") return;
  charts.set(id, new window.Chart(canvas, config));
}
