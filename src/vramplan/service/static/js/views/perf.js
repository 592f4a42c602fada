// Perf: TTFT, TPOT, latency and throughput of the scenario's model on its GPU layout.
"use strict";
import { api } from "../api.js";
import { $, add, el, figures, assumptions } from "../dom.js";
import { count, ms, num, perSecond, seconds, yesNo } from "../format.js";
import { checkScenario, modelOf, scenario } from "../scenario.js";
import { saveBar } from "../view.js";

export const name = "perf";
export const kinds = ["perf"];

export async function submit(out) {
  const s = scenario();
  checkScenario(s, { gpu: true });
  const req = { ...modelOf(s), gpu: s.gpu, engine: $("perf-engine").value, tensor_parallel_size: s.tensor_parallel_size || 1 };
  const dataset = $("perf-dataset").value;
  if (dataset) req.dataset = dataset;
  else Object.assign(req, { input_len: Number($("perf-input").value), output_len: Number($("perf-output").value) });
  for (const key of ["dtype", "quantization", "kv_cache_dtype"]) if (s[key]) req[key] = s[key];
  const mode = $("perf-mode").value;
  if (mode === "max_throughput") req.max_throughput = true;
  else req[mode] = mode === "request_rate" ? s.rate : s.users;
  const d = await api("/api/perf", req);
  render(out, req, d);
}

export function fill(req) {
  if (req.engine) $("perf-engine").value = req.engine;
  if (req.input_len) $("perf-input").value = req.input_len;
  if (req.output_len) $("perf-output").value = req.output_len;
  $("perf-dataset").value = req.dataset || "";
  const mode = ["batch_size", "concurrency", "request_rate", "max_throughput"].find((k) => req[k] != null && req[k] !== false);
  if (mode) $("perf-mode").value = mode;
}

const MODES = { batch: "static batch", concurrency: "closed loop", burst: "burst", rate: "open loop (Poisson arrivals)", "max-throughput": "maximum throughput" };

export function render(out, req, d) {
  const model = req.model || req.name || "uploaded model";
  const load = req.concurrency ? count(req.concurrency, "concurrent user") : req.request_rate ? perSecond(req.request_rate, "requests")
    : req.batch_size ? `batch of ${count(req.batch_size, "request")}` : "as many as fit";
  const rows = [
    ["TTFT", ms(d.ttft_ms)], ["TPOT", ms(d.tpot_ms)], ["ITL", ms(d.itl_ms)], ["end-to-end latency", seconds(d.latency_s)],
    ["output throughput", perSecond(d.output_tokens_per_s, "tokens")], ["total throughput", perSecond(d.total_tokens_per_s, "tokens")],
    ["requests", perSecond(d.requests_per_s, "requests")], ["running batch", count(d.batch_size, "request")],
    ["decode step", `${ms(d.decode_step_ms)} (${d.bound}-bound)`], ["prefill", ms(d.prefill_ms)],
    ["physical max output throughput", perSecond(d.physical_max_output_tokens_per_s, "tokens")],
    ["KV cache capacity", count(Math.round(d.kv_cache_tokens), "token")],
  ];
  if (d.dataset) {
    const lengths = (k) => `mean ${num(d.dataset[k].mean, 0)} · p50 ${num(d.dataset[k].p50, 0)} · p99 ${num(d.dataset[k].p99, 0)}`;
    rows.splice(4, 0, ["latency p50 / p99", `${seconds(d.latency_p50_s)} / ${seconds(d.latency_p99_s)}`]);
    rows.push(["input tokens", lengths("input_tokens")], ["output tokens", lengths("output_tokens")]);
  }
  if (d.utilization != null) rows.push(["utilisation", `${num(100 * d.utilization, 1)} %`]);
  rows.push(["stable (queue does not grow)", yesNo(d.stable)]);
  add(out, 
    el("p", { class: "subject" }, `${model} on ${req.tensor_parallel_size || 1} x ${req.gpu} · ${d.engine} · ${MODES[d.mode] || d.mode}, ${load} · ${d.dataset ? `dataset ${d.dataset.name}` : `${count(d.input_len, "token")} in / ${count(d.output_len, "token")} out`}`),
    figures(rows.map(([k, v]) => [k, { text: v, attrs: { "data-figure": k } }]), { "aria-label": "performance figures", "data-testid": "perf-figures" }),
    assumptions(d.assumptions),
    saveBar(name, "perf", req, d, `perf · ${model} on ${req.gpu}`),
  );
}
