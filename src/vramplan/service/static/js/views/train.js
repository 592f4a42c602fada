// Train: fine-tuning memory per GPU (weights, gradients, optimizer, activations, overhead).
"use strict";
import { api } from "../api.js";
import { $, add, el, list, assumptions, table } from "../dom.js";
import { count, gib, label, num } from "../format.js";
import { checkScenario, modelOf, scenario } from "../scenario.js";
import { fixText, saveBar } from "../view.js";

export const name = "train";
export const kinds = ["train"];
const PARTS = [["weights_bytes", "weights"], ["gradients_bytes", "gradients"], ["optimizer_bytes", "optimizer states"], ["activations_bytes", "activations"], ["overhead_bytes", "overhead"]];

export async function submit(out) {
  const s = scenario();
  checkScenario(s);
  const seq = $("train-seq").value ? Number($("train-seq").value) : s.context;
  const req = { ...modelOf(s), method: $("train-method").value, seq_len: seq, micro_batch: Number($("train-micro").value), gpus: Number($("train-gpus").value),
    zero: Number($("train-zero").value), optimizer: $("train-optimizer").value, recompute: $("train-recompute").value, lora_rank: Number($("train-rank").value) };
  if (s.gpu) req.gpu = s.gpu;
  const d = await api("/api/train", req);
  render(out, req, d);
}

export function fill(req) {
  const set = (id, v) => { if (v != null) $(id).value = String(v); };
  set("train-method", req.method); set("train-seq", req.seq_len); set("train-micro", req.micro_batch); set("train-gpus", req.gpus);
  set("train-zero", req.zero); set("train-optimizer", req.optimizer); set("train-recompute", req.recompute); set("train-rank", req.lora_rank);
}

export function render(out, req, d) {
  const per = d.per_gpu || {};
  const verdict = d.fits == null ? "no GPU chosen" : d.fits ? `fits ${d.gpu}` : `does not fit ${d.gpu}`;
  const detail = Object.entries(per.detail || {}).map(([k, v]) => [label(k), k.includes("microbatches") || k.includes("count") ? num(v) : gib(v)]);
  add(out, 
    el("p", { class: "subject" }, `${d.model} · ${d.method} · ${count(d.trainable_params, "trainable parameter")} of ${num(d.params)} · micro-batch ${num(d.micro_batch)} x ${count(d.seq_len, "token")} · ${count(d.gpus, "GPU")}`),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("span", { class: "k" }, "per GPU"), el("span", { class: "v", "data-testid": "train-total", dataset: { bytes: per.total_bytes } }, gib(per.total_bytes))),
      el("div", { class: "card" }, el("span", { class: "k" }, "verdict"), el("span", { class: `v ${d.fits == null ? "" : d.fits ? "fits" : "nofit"}`, "data-testid": "train-verdict" }, verdict)),
      el("div", { class: "card" }, el("span", { class: "k" }, "largest micro-batch"), el("span", { class: "v" }, d.max_micro_batch == null ? "-" : num(d.max_micro_batch))),
      el("div", { class: "card" }, el("span", { class: "k" }, "longest sequence"), el("span", { class: "v" }, d.max_seq_len == null ? "-" : count(d.max_seq_len, "token")))),
    list((d.fixes || []).map(fixText), "fixes"),
    table(["component", "per GPU"], [...PARTS.map(([k, lbl]) => [lbl, { text: gib(per[k]), attrs: { class: "num", "data-key": k, "data-bytes": per[k] } }]),
      [el("b", null, "total"), { text: gib(per.total_bytes), attrs: { class: "num", "data-key": "total_bytes", "data-bytes": per.total_bytes } }]],
    { "aria-label": "training memory", "data-testid": "train-components" }),
    detail.length ? el("details", { class: "panel" }, el("summary", null, "Where the overhead and activations go"), table(["part", "per GPU"], detail, { "aria-label": "detail" })) : null,
    assumptions(d.assumptions),
    saveBar(name, "train", req, d, `train · ${d.model} · ${d.method}`),
  );
}
