// vLLM / SGLang: what the engine logs at startup for a command line, and whether it starts.
"use strict";
import { api } from "../api.js";
import { $, add, el, figures, list, assumptions, table } from "../dom.js";
import { label, value } from "../format.js";
import { scenario } from "../scenario.js";
import { fixText, saveBar } from "../view.js";

export const name = "engine";
export const kinds = ["vllm", "sglang"];
const PREFIX = { vllm: "vllm serve", sglang: "python -m sglang.launch_server" };
const FIGURES = ["weights_gib", "non_torch_gib", "activation_peak_gib", "cuda_graph_gib", "available_kv_cache_gib", "kv_cache_tokens", "gpu_blocks", "max_concurrency"];
const ENGINE_NAMES = { vllm: "vLLM", sglang: "SGLang" };

/** Quote a word for a shell line only when it needs it. */
const quote = (w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`);

/** The engine's own command line for the scenario. */
export function commandFor(engine, s) {
  const words = engine === "vllm"
    ? [s.model || "MODEL", "--max-model-len", s.context, "--max-num-seqs", s.users]
    : ["--model-path", s.model || "MODEL", "--context-length", s.context, "--max-running-requests", s.users];
  if (s.tensor_parallel_size) words.push(engine === "vllm" ? "--tensor-parallel-size" : "--tp", s.tensor_parallel_size);
  for (const key of ["dtype", "quantization", "kv_cache_dtype"]) if (s[key]) words.push(`--${key.replace(/_/g, "-")}`, s[key]);
  return `${PREFIX[engine]} ${words.map((w) => quote(String(w))).join(" ")}`;
}

export function rebuild() {
  $("engine-command").value = commandFor($("engine-kind").value, scenario());
}

export async function submit(out) {
  const engine = $("engine-kind").value;
  const s = scenario();
  if (!$("engine-command").value.trim()) rebuild();
  const req = { command: $("engine-command").value.trim() };
  if (s.gpu) req.gpu = s.gpu;
  if ($("engine-version").value.trim()) req.engine_version = $("engine-version").value.trim();
  const d = await api(`/api/${engine}`, req);
  render(out, req, d, engine);
}

export function fill(req, kind) {
  $("engine-kind").value = kind === "sglang" ? "sglang" : "vllm";
  $("engine-command").value = req.command || (req.args || []).join(" ");
  $("engine-version").value = req.engine_version || "";
}

export function render(out, req, d, kind) {
  const engine = d.engine || kind;
  const model = (d.settings && (d.settings.model || d.settings.model_path)) || "";
  const starts = d.starts ? "starts" : "does not start";
  add(out, 
    el("p", { class: "subject" }, `${ENGINE_NAMES[engine] || engine} ${d.engine_version} · ${model} · per GPU`),
    el("p", { class: `verdict ${d.starts ? "fits" : "nofit"}`, "data-testid": "engine-verdict" }, `The engine ${starts}.`),
    list(d.errors, "fixes"),
    d.fixes && d.fixes.length ? el("div", null, el("h3", null, "Fixes"), list(d.fixes.map(fixText))) : null,
    figures(FIGURES.filter((k) => k in d).map((k) => [label(k), { text: value(k, d[k]), attrs: { "data-key": k } }]), { "aria-label": "startup figures", "data-testid": "engine-figures" }),
    d.ignored_flags && d.ignored_flags.length ? el("p", { class: "hint" }, `Ignored flags (no memory effect modelled): ${d.ignored_flags.join(" ")}`) : null,
    el("details", { class: "panel" }, el("summary", null, "Settings the engine will use"),
      table(["setting", "value"], Object.entries(d.settings || {}).map(([k, v]) => [label(k), value(k, v)]), { "aria-label": "settings" })),
    assumptions(d.assumptions),
    saveBar(name, engine, req, d, `${ENGINE_NAMES[engine] || engine} · ${model}`),
  );
}
