// Plan: ranked deployments (GPU kind x TP x PP x precision x replicas) that meet the latency targets.
"use strict";
import { api } from "../api.js";
import { $, add, el, list, assumptions, table } from "../dom.js";
import { count, gib, ms, num, perSecond, usd } from "../format.js";
import { checkScenario, modelOf, scenario } from "../scenario.js";
import { saveBar } from "../view.js";

export const name = "plan";
export const kinds = ["plan"];

/** One checkbox per catalogue GPU; the scenario's GPU starts ticked. */
export function setGpus(gpus, ticked) {
  $("plan-gpus").replaceChildren(...gpus.map((g, i) => {
    const id = `plan-gpu-${i}`;
    return el("label", { class: "check", for: id }, el("input", { type: "checkbox", id, value: g.name, checked: g.name === ticked }), g.name);
  }));
}

const tickedGpus = () => [...$("plan-gpus").querySelectorAll("input:checked")].map((i) => i.value);

export async function submit(out) {
  const s = scenario();
  checkScenario(s);
  const req = { ...modelOf(s), context: s.context, users: s.users, rate: s.rate, criterion: $("plan-criterion").value, limit: 10 };
  const ttft = Number($("plan-ttft").value);
  const tpot = Number($("plan-tpot").value);
  if ($("plan-ttft").value && ttft > 0) req.ttft_ms = ttft;
  if ($("plan-tpot").value && tpot > 0) req.tpot_ms = tpot;
  const gpus = tickedGpus();
  if (gpus.length) req.gpus = gpus;
  for (const key of ["dtype", "quantization", "kv_cache_dtype"]) if (s[key]) req[key] = s[key];
  const d = await api("/api/plan", req);
  render(out, req, d);
}

export function fill(req) {
  $("plan-ttft").value = req.ttft_ms ?? "";
  $("plan-tpot").value = req.tpot_ms ?? "";
  if (req.criterion) $("plan-criterion").value = req.criterion;
  const wanted = new Set(Array.isArray(req.gpus) ? req.gpus : []);
  for (const box of $("plan-gpus").querySelectorAll("input")) box.checked = wanted.has(box.value);
}

function targetsLine(d, req) {
  const t = d.targets || {};
  const parts = [t.ttft_ms != null ? `TTFT at most ${ms(t.ttft_ms)}` : "no TTFT target", t.tpot_ms != null ? `TPOT at most ${ms(t.tpot_ms)}` : "no TPOT target"];
  if (t.availability != null) parts.push(`availability ${num(100 * t.availability, 2)} %`);
  const gpus = Array.isArray(req.gpus) && req.gpus.length ? req.gpus.join(", ") : "every GPU in the catalogue";
  return `${parts.join(", ")} · ${count(d.users, "user")} x ${count(d.context, "token")}${d.rate != null ? ` at ${perSecond(d.rate, "requests")}` : ""} · GPUs: ${gpus} · ranked by ${d.criterion} · ${count(d.options_evaluated, "option")} evaluated`;
}

export function render(out, req, d) {
  const plans = Array.isArray(d.plans) ? d.plans : [];
  const rows = plans.map((p, i) => el("tr", { dataset: { rank: i + 1 } },
    el("td", null, String(i + 1)), el("td", { class: "text", dataset: { key: "gpu" } }, p.gpu),
    el("td", { class: "num", title: "replicas x (TP x PP)", dataset: { key: "layout" } }, `${p.replicas} x (${p.tensor_parallel_size} x ${p.pipeline_parallel_size}) = ${count(p.total_gpus, "GPU")}`),
    el("td", { class: "text" }, p.precision),
    el("td", { class: "num", dataset: { key: "ttft_ms" } }, ms(p.ttft_ms)),
    el("td", { class: "num", dataset: { key: "tpot_ms" } }, ms(p.tpot_ms)),
    el("td", { class: "num", dataset: { key: "tokens_per_s" } }, perSecond(p.tokens_per_s, "tokens")),
    el("td", { class: "num", dataset: { key: "cost_per_hour" } }, usd(p.cost_per_hour, "hour")),
    el("td", { class: "num", dataset: { key: "cost_per_million_tokens" } }, usd(p.cost_per_million_tokens, "1M tokens")),
    el("td", { class: "num", dataset: { key: "max_users" } }, num(p.max_users)),
    el("td", { class: "num", dataset: { key: "memory" } }, p.per_gpu ? `${gib(p.per_gpu.total_bytes)} of ${gib(p.per_gpu.gpu_memory_bytes)}` : "-")));
  const best = plans[0];
  add(out, 
    el("p", { class: "subject", "data-testid": "plan-targets" }, targetsLine(d, req)),
    plans.length ? table(["#", "GPU", "replicas x (TP x PP)", "precision", "TTFT", "TPOT", "throughput", "cost", "cost per 1M tokens", "max users", "memory per GPU"], rows,
      { "aria-label": "ranked plans", "data-testid": "ranked" }) : el("p", { class: "nofit" }, "No deployment meets these targets."),
    list(d.messages),
    best ? el("div", { class: "panel" }, el("h3", null, `Best plan: ${best.gpu}, ${best.precision}`),
      list(best.strategy),
      best.node ? el("p", null, `Per node: ${count(best.node.gpus_per_node, "GPU")}, ${num(best.node.host_ram_gib)} GiB host RAM, ${count(best.node.cpu_cores, "CPU core")}, ${num(best.node.nvme_gib)} GiB NVMe (${best.node.why}).`) : null,
      Object.entries(best.launch || {}).map(([engine, line]) => el("div", { class: "launch" }, el("span", { class: "k" }, `launch with ${engine}`), el("code", null, line)))) : null,
    d.rejected && d.rejected.length ? el("details", { class: "panel" }, el("summary", null, `Rejected options (${d.rejected.length})`), list(d.rejected.map(String))) : null,
    assumptions(d.assumptions),
    saveBar(name, "plan", req, d, `plan · ${d.model} · ${count(d.users, "user")} x ${count(d.context, "token")}`),
  );
}
