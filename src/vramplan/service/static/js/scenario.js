// The shared scenario (model, precision, workload, GPU) that every view reads.
"use strict";
import { $ } from "./dom.js";

const upload = { config: null, name: null };

/** The scenario as API fields: model or config+name, dtype, quantization, kv_cache_dtype, gpu, context, users, rate, tp. */
export function scenario() {
  const s = { context: Number($("context").value), users: Number($("users").value), rate: Number($("rate").value) };
  if (upload.config) {
    s.config = upload.config;
    s.name = upload.name;
  } else s.model = $("model").value.trim();
  for (const key of ["dtype", "quantization", "kv_cache_dtype", "gpu"]) if ($(key).value) s[key] = $(key).value;
  if ($("tp").value) s.tensor_parallel_size = Number($("tp").value);
  return s;
}

/** The model fields of the scenario only (model, or config and name). */
export function modelOf(s) {
  return s.config ? { config: s.config, name: s.name } : { model: s.model };
}

/** Check the scenario the way the API will, with a message that says which field to fix. */
export function checkScenario(s, need) {
  if (!s.config && !s.model) throw new Error("give a model: a catalogue name, a Hub id or a config.json");
  for (const key of ["context", "users", "rate"]) {
    if (!Number.isFinite(s[key]) || s[key] <= 0) throw new Error(`${key} must be a positive number`);
  }
  if (need && need.gpu && !s.gpu) throw new Error("choose a GPU in the scenario");
  if (need && need.name && !s.model) throw new Error("this view needs a catalogue name or Hub id, not an uploaded config.json");
}

/** Put a saved request's fields back in the form (the fields it does not name keep their values). */
export function fillScenario(req) {
  if (!req || typeof req !== "object") return;
  if (req.config && typeof req.config === "object") {
    upload.config = req.config;
    upload.name = String(req.name || "uploaded config.json");
    $("config-status").textContent = `using ${upload.name}`;
  } else if (typeof req.model === "string") {
    clearUpload();
    $("model").value = req.model;
  }
  const set = (id, v) => { if (v != null) $(id).value = String(v); };
  for (const key of ["dtype", "quantization", "kv_cache_dtype", "gpu", "context", "users", "rate"]) set(key, req[key]);
  if (req.tensor_parallel_size != null) set("tp", req.tensor_parallel_size);
}

export function clearUpload() {
  upload.config = null;
  upload.name = null;
  $("config-status").textContent = "";
}

export async function readUpload(file) {
  try {
    upload.config = JSON.parse(await file.text());
    upload.name = file.name.replace(/\.json$/, "") || "uploaded";
    $("config-status").textContent = `using ${file.name}`;
  } catch (e) {
    clearUpload();
    throw new Error(`${file.name} is not JSON: choose a model's config.json`);
  }
}
