// Simulate: the scenario's requests replayed through the engine's KV allocator, over simulated time.
"use strict";
import { api } from "../api.js";
import { chartBox, draw } from "../charts.js";
import { $, add, el, figures } from "../dom.js";
import { count, gib, ms, num, pct, perSecond, seconds } from "../format.js";
import { checkScenario, scenario } from "../scenario.js";
import { saveBar } from "../view.js";

export const name = "simulate";
export const kinds = ["simulate"];

export async function submit(out) {
  const s = scenario();
  checkScenario(s, { gpu: true, name: true });
  const req = { model: s.model, gpu: s.gpu, workload: $("sim-workload").value, rate: s.rate, duration: Number($("sim-duration").value),
    allocator: $("sim-allocator").value, max_model_len: Math.max(s.context, 2), max_num_seqs: s.users, tensor_parallel_size: s.tensor_parallel_size || 1 };
  for (const key of ["dtype", "quantization", "kv_cache_dtype"]) if (s[key]) req[key] = s[key];
  const d = await api("/api/simulate", req);
  render(out, req, d);
}

export function fill(req) {
  if (req.workload) $("sim-workload").value = req.workload;
  if (req.duration) $("sim-duration").value = req.duration;
  if (req.allocator) $("sim-allocator").value = req.allocator;
  if (req.max_model_len) $("context").value = req.max_model_len;
  if (req.max_num_seqs) $("users").value = req.max_num_seqs;
}

export function render(out, req, d) {
  const w = d.workload || {};
  const kv = d.kv_budget || {};
  const rows = [
    ["requests completed", count(d.requests_completed, "request")], ["requests rejected", count(d.requests_rejected, "request")],
    ["preemptions", num(d.preemptions)], ["mean running batch", count(d.mean_batch_size, "request")],
    ["output throughput", perSecond(d.throughput_tokens_per_s, "tokens")],
    ["TTFT p50 / p99", `${ms(d.ttft_ms_p50)} / ${ms(d.ttft_ms_p99)}`], ["TPOT p50", ms(d.tpot_ms_p50)],
    ["latency p50 / p99", `${seconds(d.latency_s_p50)} / ${seconds(d.latency_s_p99)}`],
    ["KV pool per GPU", `${gib(kv.kv_capacity_bytes)} (${count(kv.kv_slots, "token")})`],
    ["KV pool holding tokens", pct(d.token_state_share)], ["reserved, not yet written", pct(d.reserved_share)],
    ["internal fragmentation", pct(d.internal_fragmentation_share)], ["external fragmentation", pct(d.external_fragmentation_share)],
    ["free", pct(d.free_share)], ["simulated time", seconds(d.simulated_s)],
  ];
  add(out, 
    el("p", { class: "subject", "data-testid": "sim-workload-line" },
      `${kv.model || req.model} on ${req.tensor_parallel_size || 1} x ${kv.gpu || req.gpu} · ${w.workload} lengths at ${perSecond(w.rate, "requests")} for ${seconds(w.duration_s)} · max model length ${count(w.max_model_len, "token")} · at most ${count(w.max_num_seqs, "running request")} · ${d.allocator} allocator`),
    figures(rows.map(([k, v]) => [k, { text: v, attrs: { "data-figure": k } }]), { "aria-label": "simulation figures", "data-testid": "sim-summary" }),
    chartBox("chart-sim", "KV pool over simulated time (% of the pool)", `KV pool: ${pct(d.token_state_share)} holding tokens on average`),
    saveBar(name, "simulate", req, d, `simulate · ${req.model} · ${w.workload} at ${num(w.rate, 2)} requests/s`),
  );
  const t = d.timeseries || {};
  const slots = d.capacity_slots || 1;
  const series = [["token", "token states"], ["reserved", "reserved"], ["internal", "internal fragmentation"], ["external", "external fragmentation"], ["free", "free"]];
  const colours = ["#4e79a7", "#76b7b2", "#f28e2b", "#e15759", "#e9edf1"];
  draw("chart-sim", { type: "line", data: { datasets: series.map(([k, lbl], i) => ({ label: lbl, fill: true, pointRadius: 0, borderWidth: 1, backgroundColor: colours[i],
    data: (t[k] || []).map((y, j) => ({ x: (t.time_s || [])[j], y: (100 * y) / slots })) })) },
    options: { maintainAspectRatio: false, animation: false, scales: { x: { type: "linear", title: { display: true, text: "simulated time (s)" } },
      y: { stacked: true, max: 100, title: { display: true, text: "% of KV pool" } } } } });
}
