// vramplan web page: a thin client of the JSON API. Every number on the page is a field of an API
// response, formatted by gib() below; the end-to-end test compares them with the API's own numbers.
"use strict";
const GIB = 2 ** 30;
const COLOURS = { weights: "#4e79a7", kv_cache: "#f28e2b", activations: "#59a14f", overhead: "#bab0ac", free: "#e9edf1" };
const $ = (id) => document.getElementById(id);
const gib = (b) => (b / GIB).toFixed(2) + " GiB";
const state = { routes: new Set(), uploaded: null, uploadedName: null, last: null, lastRequest: null, charts: {} };

async function api(path, body, method) {
  const res = await fetch(path, { method: method || (body ? "POST" : "GET"),
    headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({ error: { type: "BadResponse", message: `HTTP ${res.status}` } }));
  if (!res.ok) { const e = new Error((data.error && data.error.message) || `HTTP ${res.status}`); e.status = res.status; throw e; }
  return data;
}

function showError(err) { const box = $("error"); box.textContent = err ? String(err.message || err) : ""; box.hidden = !err; }

function request() {
  const body = { context: Number($("context").value), users: Number($("users").value) };
  if (state.uploaded) { body.config = state.uploaded; body.name = state.uploadedName; } else { body.model = $("model").value.trim(); }
  for (const key of ["dtype", "quantization", "kv_cache_dtype", "gpu"]) { const v = $(key).value; if (v) body[key] = v; }
  if ($("tp").value) body.tensor_parallel_size = Number($("tp").value);
  return body;
}

function fillForm(req) {
  if (req.config) { state.uploaded = req.config; state.uploadedName = req.name || "uploaded config.json"; $("config-status").textContent = `using ${state.uploadedName}`; }
  else if (req.model) $("model").value = req.model;
  for (const key of ["dtype", "quantization", "kv_cache_dtype", "gpu", "context", "users"]) if (req[key] != null) $(key).value = req[key];
  $("tp").value = req.tensor_parallel_size || "";
}

function chart(id, config) {
  if (state.charts[id]) state.charts[id].destroy();
  state.charts[id] = new Chart($(id), config);
}

function why(comp) {
  const inputs = Object.entries(comp.inputs || {}).filter(([, v]) => typeof v !== "object" || v === null)
    .map(([k, v]) => `${k} = ${v}`).join("\n");
  return `<details><summary>why</summary><code>${escapeHtml(comp.formula)}${inputs ? "\n" + escapeHtml(inputs) : ""}</code></details>`;
}
function escapeHtml(s) { return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }

function renderEstimate(d) {
  state.last = d;
  $("results").hidden = false;
  const per = d.per_gpu;
  const set = (id, text, title, bytes) => { const el = $(id); el.textContent = text; if (title) el.title = title; if (bytes != null) el.dataset.bytes = bytes; };
  set("total-per-gpu", gib(per.total_bytes), "weights + KV cache + activations + overhead on the busiest GPU", per.total_bytes);
  set("total-all", gib(d.total_bytes), "sum over all GPUs", d.total_bytes);
  set("gpus", `${d.gpus} (${d.tensor_parallel_size} x ${d.pipeline_parallel_size})`, "fewest GPUs that fit: TP within a node first, then PP");
  const v = $("verdict");
  v.textContent = d.fits == null ? "no GPU chosen" : d.fits ? `fits ${d.gpu}` : `does not fit ${d.gpu}`;
  v.className = "v " + (d.fits == null ? "" : d.fits ? "fits" : "nofit");
  if (d.gpu_memory_bytes) v.title = `${gib(per.total_bytes)} needed vs ${gib(d.gpu_memory_bytes)} usable on ${d.gpu}`;
  set("max-users", d.max_users == null ? "-" : d.max_users.toLocaleString("en-US"), "(GPU memory - weights - activations - overhead) / KV bytes of one sequence at this context");
  set("max-context", d.max_context == null ? "-" : d.max_context.toLocaleString("en-US"), "largest context whose KV cache for all users fits next to the fixed parts");
  $("fixes").innerHTML = (d.fixes || []).map((f) => `<li>${escapeHtml(f)}</li>`).join("");
  $("assumptions").innerHTML = (d.assumptions || []).map((a) => `<li>${escapeHtml(a)}</li>`).join("");
  const rows = [];
  for (const c of d.components) {
    rows.push(`<tr data-component="${c.name}"><td title="${escapeHtml(c.formula)}">${c.name.replace("_", " ")}</td>` +
      `<td class="num" data-bytes="${c.per_gpu_bytes}" title="${escapeHtml(c.formula)}">${gib(c.per_gpu_bytes)}</td>` +
      `<td class="num" data-bytes="${c.total_bytes}">${gib(c.total_bytes)}</td><td class="why">${why(c)}</td></tr>`);
    for (const p of c.parts || []) rows.push(`<tr class="sub" data-component="${c.name}.${p.name}"><td title="${escapeHtml(p.formula)}">${p.name.replace("_", " ")}</td>` +
      `<td class="num" data-bytes="${p.per_gpu_bytes}">${gib(p.per_gpu_bytes)}</td><td class="num" data-bytes="${p.total_bytes}">${gib(p.total_bytes)}</td><td class="why">${why(p)}</td></tr>`);
  }
  rows.push(`<tr data-component="total"><td><b>total</b></td><td class="num" data-bytes="${per.total_bytes}"><b>${gib(per.total_bytes)}</b></td>` +
    `<td class="num" data-bytes="${d.total_bytes}"><b>${gib(d.total_bytes)}</b></td><td class="why">sum of the parts</td></tr>`);
  $("components").innerHTML = rows.join("");
  const shown = Math.min(d.gpus, 8);
  const labels = Array.from({ length: shown }, (_, i) => (d.gpus > shown && i === shown - 1 ? `GPU ${i}..${d.gpus - 1}` : `GPU ${i}`));
  const datasets = d.components.map((c) => ({ label: c.name.replace("_", " "), data: labels.map(() => c.per_gpu_bytes / GIB),
    backgroundColor: COLOURS[c.name], formula: c.formula }));
  if (d.gpu_memory_bytes && d.fits) datasets.push({ label: "free", data: labels.map(() => (d.gpu_memory_bytes - per.total_bytes) / GIB), backgroundColor: COLOURS.free, formula: "GPU memory - total" });
  chart("chart-breakdown", { type: "bar", data: { labels, datasets }, options: { indexAxis: "y", maintainAspectRatio: false, animation: false,
    scales: { x: { stacked: true, title: { display: true, text: "GiB" } }, y: { stacked: true } },
    plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${ctx.parsed.x.toFixed(2)} GiB`, footer: (items) => items.length ? items[0].dataset.formula : "" } } } } });
  $("save").disabled = false;
}

async function sweep(base, d) {
  // Hold the layout of the answer fixed so the curves show how memory grows, not TP changing under it.
  const fixed = { ...base, tensor_parallel_size: d.tensor_parallel_size, pipeline_parallel_size: d.pipeline_parallel_size };
  const maxCtx = Math.max(d.context * 2, 4096);
  const contexts = [...new Set([512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072].filter((c) => c <= maxCtx).concat([d.context]))].sort((a, b) => a - b);
  const users = [...new Set([1, 2, 4, 8, 16, 32, 64, 128, 256].filter((u) => u <= Math.max(d.users * 2, 8)).concat([d.users]))].sort((a, b) => a - b);
  const run = (over) => api("/api/estimate", { ...fixed, ...over }).then((r) => r, () => null);
  const [byCtx, byUsers] = await Promise.all([Promise.all(contexts.map((c) => run({ context: c }))), Promise.all(users.map((u) => run({ users: u })))]);
  const line = (id, xs, rs, xlabel) => {
    // A category axis over doubling steps reads like a log axis, with every tick labelled.
    const ds = ["weights", "kv_cache", "activations", "overhead"].map((name) => ({ label: name.replace("_", " "), fill: true, backgroundColor: COLOURS[name], borderColor: COLOURS[name], pointRadius: 2,
      data: rs.map((r) => (r ? r.per_gpu[name + "_bytes"] / GIB : null)) }));
    if (d.gpu_memory_bytes) ds.push({ label: `${d.gpu} memory`, data: xs.map(() => d.gpu_memory_bytes / GIB), borderColor: "#c0392b", borderDash: [6, 4], pointRadius: 0, fill: false, stack: "cap" });
    chart(id, { type: "line", data: { labels: xs.map((x) => x.toLocaleString("en-US")), datasets: ds }, options: { maintainAspectRatio: false, animation: false,
      scales: { x: { title: { display: true, text: xlabel } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: "GiB per GPU" } } },
      plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${ctx.parsed.y.toFixed(2)} GiB` } } } } });
  };
  line("chart-context", contexts, byCtx, `context (tokens), ${d.users} users`);
  line("chart-users", users, byUsers, `concurrent users, ${d.context.toLocaleString("en-US")} tokens`);
}

async function runVllm(base, d) {
  const panel = $("vllm-panel");
  if ($("engine").value !== "vllm" || !base.model) { panel.hidden = true; return; }
  const args = [base.model, "--max-model-len", String(base.context), "--max-num-seqs", String(base.users), "--tensor-parallel-size", String(d.tensor_parallel_size)];
  if (base.dtype) args.push("--dtype", base.dtype);
  if (base.quantization) args.push("--quantization", base.quantization);
  if (base.kv_cache_dtype) args.push("--kv-cache-dtype", base.kv_cache_dtype);
  const v = await api("/api/vllm", { args, gpu: base.gpu || undefined });
  const row = (k, label) => `<tr><td>${label}</td><td data-key="${k}">${typeof v[k] === "number" ? v[k].toLocaleString("en-US") : escapeHtml(v[k])}${k.endsWith("_gib") ? " GiB" : ""}</td></tr>`;
  $("vllm-rows").innerHTML = [row("weights_gib", "Model loading took"), row("activation_peak_gib", "activation peak"), row("non_torch_gib", "non-torch memory"),
    row("cuda_graph_gib", "CUDA graphs"), row("available_kv_cache_gib", "Available KV cache memory"), row("kv_cache_tokens", "GPU KV cache size (tokens)"),
    row("max_concurrency", "Maximum concurrency"), row("starts", "starts")].join("") +
    (v.fixes || []).map((f) => `<tr><td>fix</td><td>${escapeHtml(typeof f === "string" ? f : `--${f.field.replaceAll("_", "-")} ${f.value} (${f.why})`)}</td></tr>`).join("");
  panel.hidden = false;
}

async function runPlanner(base) {
  const panel = $("plans-panel");
  if (!state.routes.has("/api/plan") || !base.model) { panel.hidden = true; return; }
  try {
    const res = await api("/api/plan", { model: base.model, context: base.context, users: base.users });
    const plans = Array.isArray(res) ? res : res.plans || [];
    const cols = ["gpu", "replicas", "gpus_per_replica", "tensor_parallel_size", "pipeline_parallel_size", "precision", "ttft_ms", "tpot_ms", "tokens_per_s", "cost_per_hour"]
      .filter((k) => plans.length && k in plans[0]);
    $("ranked-head").innerHTML = `<tr><th>#</th>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}</tr>`;
    $("ranked-rows").innerHTML = plans.slice(0, 10).map((p, i) => `<tr><td>${i + 1}</td>${cols.map((c) => `<td data-key="${c}" title="${escapeHtml((p.strategy || []).join("; "))}">${typeof p[c] === "number" ? p[c].toLocaleString("en-US") : escapeHtml(p[c] ?? "-")}</td>`).join("")}</tr>`).join("");
    panel.hidden = false;
  } catch (e) { panel.hidden = true; }
}

async function estimateNow(ev) {
  if (ev) ev.preventDefault();
  showError(null);
  const body = request();
  state.lastRequest = body;
  $("go").disabled = true;
  try {
    const d = await api("/api/estimate", body);
    renderEstimate(d);
    await Promise.all([sweep(body, d), runVllm(body, d).catch(showError), runPlanner(body)]);
    document.body.dataset.ready = "1";
  } catch (e) { showError(e); document.body.dataset.ready = "error"; }
  finally { $("go").disabled = false; }
}

async function simulateNow() {
  const d = state.last;
  if (!d || !state.lastRequest.model) { showError("simulation needs a catalogue model"); return; }
  showError(null);
  $("simulate").disabled = true;
  try {
    const s = await api("/api/simulate", { model: state.lastRequest.model, gpu: d.gpu || "A100-40GB", rate: Number($("sim-rate").value),
      duration: Number($("sim-duration").value), max_model_len: Math.min(d.context, 32768), tensor_parallel_size: d.tensor_parallel_size });
    const t = s.timeseries;
    const slots = s.capacity_slots;
    const ds = [["token", "token states"], ["reserved", "reserved"], ["internal", "internal fragmentation"], ["external", "external fragmentation"], ["free", "free"]]
      .map(([k, label], i) => ({ label, fill: true, pointRadius: 0, borderWidth: 1, backgroundColor: ["#4e79a7", "#76b7b2", "#f28e2b", "#e15759", "#e9edf1"][i],
        data: (t[k] || []).map((y, j) => ({ x: t.time_s[j], y: (100 * y) / slots })) }));
    chart("chart-sim", { type: "line", data: { datasets: ds }, options: { maintainAspectRatio: false, animation: false,
      scales: { x: { type: "linear", title: { display: true, text: "simulated time (s)" } }, y: { stacked: true, max: 100, title: { display: true, text: "% of KV pool" } } } } });
    $("sim-summary").textContent = `${s.requests_completed} requests, mean batch ${s.mean_batch_size.toFixed(1)}, ` +
      `${s.throughput_tokens_per_s.toFixed(0)} output tok/s, TTFT p50 ${s.ttft_ms_p50.toFixed(0)} ms, KV pool ${gib(s.kv_budget.kv_capacity_bytes)} per GPU`;
  } catch (e) { showError(e); } finally { $("simulate").disabled = false; }
}

async function savePlan() {
  if (!state.last) return;
  const name = `${state.last.model} · ${state.last.users} x ${state.last.context}`;
  try {
    const p = await api("/api/plans", { name, kind: "estimate", scenario: state.lastRequest, result: state.last });
    history.replaceState(null, "", p.url);
    $("permalink").innerHTML = `saved: <a href="${p.url}" data-testid="permalink-link">${location.origin}${p.url}</a>`;
  } catch (e) { showError(e); }
}

async function init() {
  const [models, gpus, spec] = await Promise.all([api("/api/models"), api("/api/gpus"), api("/openapi.json").catch(() => ({ paths: {} }))]);
  state.routes = new Set(Object.keys(spec.paths || {}));
  $("model-list").innerHTML = models.map((m) => `<option value="${escapeHtml(m.id)}">${(m.params / 1e9).toFixed(1)} B</option>`).join("");
  $("gpu").innerHTML += gpus.map((g) => `<option value="${escapeHtml(g.name)}">${escapeHtml(g.name)} (${g.memory_gib} GiB)</option>`).join("");
  const h100 = gpus.find((g) => (g.aliases || []).some((a) => a.toUpperCase() === "H100-80GB")) || gpus.find((g) => /H100/.test(g.name));
  $("gpu").value = h100 ? h100.name : "";
  if (state.routes.has("/api/vllm")) $("engine").innerHTML += `<option value="vllm">vLLM (startup log prediction)</option>`;
  $("scenario").addEventListener("submit", estimateNow);
  $("save").addEventListener("click", savePlan);
  $("simulate").addEventListener("click", simulateNow);
  $("model").addEventListener("input", () => { state.uploaded = null; $("config-status").textContent = ""; });
  $("config-file").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    try { state.uploaded = JSON.parse(await file.text()); state.uploadedName = file.name.replace(/\.json$/, "") || "uploaded"; $("config-status").textContent = `using ${file.name}`; }
    catch (e) { state.uploaded = null; showError(`${file.name} is not JSON`); }
  });
  const planId = new URLSearchParams(location.search).get("plan");
  if (planId) {
    try {
      const p = await api(`/api/plans/${encodeURIComponent(planId)}`);
      fillForm(p.scenario);
      state.lastRequest = p.scenario;
      if (p.kind === "estimate") { renderEstimate(p.result); await sweep(p.scenario, p.result); }
      $("permalink").textContent = `plan ${p.id}: ${p.name}`;
      document.body.dataset.ready = "1";
      return;
    } catch (e) { showError(e); }
  }
  await estimateNow();
}

init().catch((e) => { showError(e); document.body.dataset.ready = "error"; });
