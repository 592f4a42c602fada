// Estimate: memory per GPU, the components with their formulas, and how memory grows with context and users.
"use strict";
import { api } from "../api.js";
import { COLOURS, chartBox, draw } from "../charts.js";
import { $, add, el, list, assumptions } from "../dom.js";
import { GIB, count, gib, label, num } from "../format.js";
import { checkScenario, modelOf, scenario } from "../scenario.js";
import { fixText, saveBar } from "../view.js";

export const name = "estimate";
export const kinds = ["estimate"];

/** The /api/estimate body for the scenario. */
function request(s) {
  const body = { ...modelOf(s), context: s.context, users: s.users };
  for (const key of ["dtype", "quantization", "kv_cache_dtype", "gpu", "tensor_parallel_size"]) if (s[key] != null) body[key] = s[key];
  return body;
}

export async function submit(out) {
  const s = scenario();
  checkScenario(s);
  const req = request(s);
  const d = await api("/api/estimate", req);
  render(out, req, d);
  await sweep(req, d);
}

export function fill() {}

const COMPONENT_NAMES = { weights: "weights", kv_cache: "KV cache", activations: "activations", overhead: "overhead" };
const componentName = (n) => COMPONENT_NAMES[n] || label(String(n));

function why(c) {
  const inputs = Object.entries(c.inputs || {}).filter(([, v]) => v === null || typeof v !== "object").map(([k, v]) => `${k} = ${v}`);
  return el("details", null, el("summary", null, "why"), el("code", null, [String(c.formula || ""), ...inputs].join("\n")));
}

function componentRow(c, sub) {
  return el("tr", { class: sub ? "sub" : null, dataset: { component: sub ? `${sub}.${c.name}` : String(c.name) } },
    el("td", { title: c.formula }, componentName(c.name)),
    el("td", { class: "num", title: c.formula, dataset: { bytes: c.per_gpu_bytes } }, gib(c.per_gpu_bytes)),
    el("td", { class: "num", dataset: { bytes: c.total_bytes } }, gib(c.total_bytes)),
    el("td", { class: "why" }, why(c)));
}

function card(id, key, text, title, bytes) {
  return el("div", { class: "card" }, el("span", { class: "k" }, key),
    el("span", { class: "v", id, "data-testid": id, title, dataset: bytes != null ? { bytes } : null }, text));
}

export function render(out, req, d) {
  const per = d.per_gpu || {};
  const verdict = d.fits == null ? "no GPU chosen" : d.fits ? `fits ${d.gpu}` : `does not fit ${d.gpu}`;
  const gpus = `${count(d.gpus, "GPU")} (TP ${d.tensor_parallel_size} x PP ${d.pipeline_parallel_size})`;
  add(out, 
    el("p", { class: "subject" }, `${d.model} · ${d.precision} weights · KV ${d.kv_cache_dtype} · ${count(d.users, "user")} x ${count(d.context, "token")}`),
    el("div", { class: "cards" },
      card("total-per-gpu", "per GPU", gib(per.total_bytes), "weights + KV cache + activations + overhead on the busiest GPU", per.total_bytes),
      card("gpus", "GPUs", gpus, "fewest GPUs that fit: TP within a node first, then PP"),
      el("div", { class: "card" }, el("span", { class: "k" }, "verdict"),
        el("span", { class: `v ${d.fits == null ? "" : d.fits ? "fits" : "nofit"}`, id: "verdict", "data-testid": "verdict",
          title: d.gpu_memory_bytes ? `${gib(per.total_bytes)} needed vs ${gib(d.gpu_memory_bytes)} on ${d.gpu}` : null }, verdict)),
      card("max-users", "max users at this context", d.max_users == null ? "-" : num(d.max_users), "(GPU memory - weights - activations - overhead) / KV bytes of one sequence at this context"),
      card("max-context", "max context at these users", d.max_context == null ? "-" : num(d.max_context), "largest context whose KV cache for all users fits next to the fixed parts"),
      card("total-all", "all GPUs", gib(d.total_bytes), "sum over all GPUs", d.total_bytes)),
    list((d.fixes || []).map(fixText), "fixes"),
  );
  const rows = [];
  for (const c of d.components || []) {
    rows.push(componentRow(c));
    for (const p of c.parts || []) rows.push(componentRow(p, c.name));
  }
  rows.push(el("tr", { dataset: { component: "total" } }, el("td", null, el("b", null, "total")),
    el("td", { class: "num", dataset: { bytes: per.total_bytes } }, el("b", null, gib(per.total_bytes))),
    el("td", { class: "num", dataset: { bytes: d.total_bytes } }, el("b", null, gib(d.total_bytes))),
    el("td", { class: "why" }, "sum of the parts")));
  add(out, 
    el("div", { class: "grid" },
      el("div", { class: "panel" }, el("h3", null, "Memory per GPU"), chartBox("chart-breakdown", "per GPU, stacked", `memory per GPU: ${gib(per.total_bytes)}`),
        el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "components" },
          el("table", { class: "components", "data-testid": "components" },
            el("thead", null, el("tr", null, ["component", "per GPU", "all GPUs", "why"].map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", { id: "components" }, rows)))),
      el("div", { class: "panel" }, el("h3", null, "Memory vs context and users"),
        chartBox("chart-context", `context (tokens), ${count(d.users, "user")}`), chartBox("chart-users", `concurrent users, ${count(d.context, "token")}`))),
    assumptions(d.assumptions),
    saveBar(name, "estimate", req, d, `${d.model} · ${count(d.users, "user")} x ${count(d.context, "token")}`),
  );
  breakdownChart(d);
}

function breakdownChart(d) {
  const per = d.per_gpu || {};
  const shown = Math.min(d.gpus || 1, 8);
  const labels = Array.from({ length: shown }, (_, i) => (d.gpus > shown && i === shown - 1 ? `GPU ${i}..${d.gpus - 1}` : `GPU ${i}`));
  const datasets = (d.components || []).map((c) => ({ label: componentName(c.name), data: labels.map(() => c.per_gpu_bytes / GIB), backgroundColor: COLOURS[c.name] }));
  if (d.gpu_memory_bytes && d.fits) datasets.push({ label: "free", data: labels.map(() => (d.gpu_memory_bytes - per.total_bytes) / GIB), backgroundColor: COLOURS.free });
  draw("chart-breakdown", { type: "bar", data: { labels, datasets }, options: { indexAxis: "y", maintainAspectRatio: false, animation: false,
    scales: { x: { stacked: true, title: { display: true, text: "GiB" } }, y: { stacked: true } },
    plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${num(ctx.parsed.x, 2)} GiB` } } } } });
}

/** Memory at other contexts and user counts, with the layout of the answer held fixed. */
async function sweep(req, d) {
  const fixed = { ...req, tensor_parallel_size: d.tensor_parallel_size, pipeline_parallel_size: d.pipeline_parallel_size };
  const maxCtx = Math.max(d.context * 2, 4096);
  const contexts = [...new Set([512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072].filter((c) => c <= maxCtx).concat([d.context]))].sort((a, b) => a - b);
  const users = [...new Set([1, 2, 4, 8, 16, 32, 64, 128, 256].filter((u) => u <= Math.max(d.users * 2, 8)).concat([d.users]))].sort((a, b) => a - b);
  const one = (over) => api("/api/estimate", { ...fixed, ...over }).catch(() => null);
  const [byCtx, byUsers] = await Promise.all([Promise.all(contexts.map((c) => one({ context: c }))), Promise.all(users.map((u) => one({ users: u })))]);
  const line = (id, xs, rs, xlabel) => {
    const ds = ["weights", "kv_cache", "activations", "overhead"].map((k) => ({ label: componentName(k), fill: true, backgroundColor: COLOURS[k], borderColor: COLOURS[k], pointRadius: 2,
      data: rs.map((r) => (r ? r.per_gpu[`${k}_bytes`] / GIB : null)) }));
    if (d.gpu_memory_bytes) ds.push({ label: `${d.gpu} memory`, data: xs.map(() => d.gpu_memory_bytes / GIB), borderColor: "#c0392b", borderDash: [6, 4], pointRadius: 0, fill: false, stack: "cap" });
    draw(id, { type: "line", data: { labels: xs.map((x) => num(x)), datasets: ds }, options: { maintainAspectRatio: false, animation: false,
      scales: { x: { title: { display: true, text: xlabel } }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "GiB per GPU" } } },
      plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${num(ctx.parsed.y, 2)} GiB` } } } } });
  };
  if ($("chart-context")) line("chart-context", contexts, byCtx, "context (tokens)");
  if ($("chart-users")) line("chart-users", users, byUsers, "concurrent users");
}

export const afterOpen = sweep;
