// Explain: a pasted startup log, term by term against the prediction for the same settings.
"use strict";
import { api } from "../api.js";
import { $, add, el, list, assumptions, table } from "../dom.js";
import { label, pct, value, num } from "../format.js";
import { scenario } from "../scenario.js";
import { saveBar } from "../view.js";

export const name = "explain";
export const kinds = ["explain"];
const ENGINE_NAMES = { vllm: "vLLM", sglang: "SGLang", tgi: "TGI", llamacpp: "llama.cpp" };

export async function submit(out) {
  const log = $("explain-log").value;
  if (!log.trim()) throw new Error("paste a startup log first (or read one from a file)");
  const req = { log };
  const s = scenario();
  if (s.gpu) req.gpu = s.gpu;
  const d = await api("/api/explain", req);
  render(out, req, d);
}

export function fill(req) {
  $("explain-log").value = typeof req.log === "string" ? req.log : "";
}

/** A signed difference in the unit of its field ("+0.02 GiB", "-48 tokens"). */
function difference(key, v) {
  if (typeof v !== "number") return "-";
  const text = value(key, Math.abs(v));
  if (/^[0.,]+(\D|$)/.test(text)) return text; // rounds to zero: no sign
  return v > 0 ? `+${text}` : v < 0 ? `-${text}` : text;
}

export function render(out, req, d) {
  const settings = d.settings || {};
  const model = settings.served_model_name || settings.model || settings.model_path || "";
  const rows = Object.entries(d.terms || {}).map(([k, t]) => el("tr", { dataset: { term: k } },
    el("td", null, label(k)), el("td", { class: "num" }, value(k, t.logged)), el("td", { class: "num" }, value(k, t.predicted)),
    el("td", { class: "num" }, difference(k, t.difference)), el("td", { class: "num" }, pct(t.relative_difference)),
    el("td", { class: "text" }, t.likely_cause || "")));
  add(out, 
    el("p", { class: "subject" }, `${ENGINE_NAMES[d.engine] || d.engine || "engine"} ${d.engine_version || ""} log${model ? ` · ${model}` : ""}`),
    list(d.log_errors, "fixes"),
    table(["term", "logged", "predicted", "difference", "relative", "likely cause"], rows, { "aria-label": "log terms", "data-testid": "explain-terms" }),
    list(d.notes),
    el("details", { class: "panel" }, el("summary", null, "Settings read from the log"),
      table(["setting", "value"], Object.entries(settings).map(([k, v]) => [label(k), value(k, v)]), { "aria-label": "settings" })),
    assumptions(d.assumptions),
    saveBar(name, "explain", req, d, `explain · ${model || d.engine} · ${num(req.log.length)} characters`),
  );
}
