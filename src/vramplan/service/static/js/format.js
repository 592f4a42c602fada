// Units and number formatting, as the CLI prints them: GiB with two decimals, thousands separators,
// a unit on every figure, singular/plural by count, "-" for a missing value.
"use strict";

export const GIB = 2 ** 30;
const formats = new Map();

/** A number with thousands separators and a fixed number of decimals ("-" when missing). */
export function num(x, digits = 0) {
  if (x == null || typeof x !== "number" || !Number.isFinite(x)) return "-";
  if (!formats.has(digits)) formats.set(digits, new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const text = formats.get(digits).format(x);
  return /^-[0.,]+$/.test(text) ? text.slice(1) : text; // no "-0.00" for a value that rounds to zero
}

/** Bytes as GiB: "15.23 GiB". */
export const gib = (bytes) => (typeof bytes === "number" ? `${num(bytes / GIB, 2)} GiB` : "-");
/** A value already in GiB (engine predictions): "54.82 GiB". */
export const gibOf = (g) => (typeof g === "number" ? `${num(g, 2)} GiB` : "-");
/** "1 user", "16 users", "1,024 tokens"; fractional counts keep one decimal ("2.4 requests"). */
export function count(n, singular, plural) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "-";
  const word = n === 1 ? singular : plural || `${singular}s`;
  return `${num(n, Number.isInteger(n) ? 0 : 1)} ${word}`;
}
/** Milliseconds: two decimals under 10 ms, one above ("9.68 ms", "132.5 ms"). */
export const ms = (x) => (typeof x === "number" ? `${num(x, Math.abs(x) < 10 ? 2 : 1)} ms` : "-");
export const seconds = (x) => (typeof x === "number" ? `${num(x, 2)} s` : "-");
/** A rate: "1,416 tokens/s", "5.53 requests/s". */
export const perSecond = (x, unit) => (typeof x === "number" ? `${num(x, Math.abs(x) < 100 ? 2 : 0)} ${unit}/s` : "-");
export const usd = (x, per) => (typeof x === "number" ? `$${num(x, 2)}${per ? ` per ${per}` : ""}` : "-");
/** A share 0..1 as a percentage: "85.0 %". */
export const pct = (share) => (typeof share === "number" ? `${num(100 * share, Math.abs(share) < 0.01 ? 2 : 1)} %` : "-");
export const times = (x) => (typeof x === "number" ? `${num(x, 2)}x` : "-");
export const yesNo = (b) => (b == null ? "-" : b ? "yes" : "no");
/** An ISO timestamp as "2026-12-03 08:39 UTC". */
export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

// Labels of the engine-prediction fields shared by /api/vllm, /api/sglang and /api/explain.
const LABELS = {
  weights_gib: "weights",
  non_torch_gib: "non-torch memory",
  activation_peak_gib: "activation peak",
  cuda_graph_gib: "CUDA graphs",
  cuda_graph_estimated_gib: "CUDA graphs (engine's estimate)",
  available_kv_cache_gib: "KV cache memory",
  total_non_kv_gib: "everything but the KV cache",
  free_gpu_memory_at_startup_gib: "free GPU memory at startup",
  kv_cache_tokens: "KV cache size",
  gpu_blocks: "KV cache blocks",
  max_concurrency: "maximum concurrency at full length",
  gpu_total_gib: "GPU memory",
};

/** A field name as words: "available_kv_cache_gib" -> "KV cache memory"; unknown keys lose their unit suffix. */
export function label(key) {
  if (LABELS[key]) return LABELS[key];
  return key.replace(/_(gib|bytes|gb|ms|s)$/, "").replace(/_/g, " ").replace(/\bkv\b/g, "KV").replace(/\bgpu\b/g, "GPU").replace(/\bcuda\b/g, "CUDA").replace(/\bnccl\b/g, "NCCL");
}

/** A field's value with the unit its name implies (the API names every unit in its keys). */
export function value(key, v) {
  if (v == null) return "-";
  if (typeof v === "boolean") return yesNo(v);
  if (Array.isArray(v)) return v.map(String).join(", ");
  if (typeof v !== "number") return String(v);
  if (key.endsWith("_gib")) return gibOf(v);
  if (key.endsWith("_gb")) return `${num(v, 2)} GB`;
  if (key.endsWith("_bytes")) return gib(v);
  if (key.endsWith("_tokens") || key === "max_total_tokens" || key === "context_length" || key === "max_model_len") return count(v, "token");
  if (key === "gpu_blocks") return count(v, "block");
  if (key === "max_concurrency") return times(v);
  if (key.endsWith("_ms")) return ms(v);
  if (key.endsWith("_s")) return seconds(v);
  return num(v, Number.isInteger(v) ? 0 : 2);
}
