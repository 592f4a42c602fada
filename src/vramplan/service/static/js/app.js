// vramplan web page: a thin client of the JSON API. One view per CLI command; the scenario form at the
// top feeds them all. Everything shown is built from text nodes (see dom.js).
"use strict";
import { api, onUnauthorized, token } from "./api.js";
import { $, add, el } from "./dom.js";
import { num, when } from "./format.js";
import { clearUpload, fillScenario, readUpload, scenario } from "./scenario.js";
import { reset, run, showError } from "./view.js";
import * as engine from "./views/engine.js";
import * as estimate from "./views/estimate.js";
import * as explain from "./views/explain.js";
import * as perf from "./views/perf.js";
import * as plan from "./views/plan.js";
import * as plans from "./views/plans.js";
import * as simulate from "./views/simulate.js";
import * as train from "./views/train.js";

const VIEWS = Object.fromEntries([estimate, engine, explain, perf, plan, simulate, train, plans].map((v) => [v.name, v]));
const BY_KIND = Object.fromEntries(Object.values(VIEWS).flatMap((v) => v.kinds.map((k) => [k, v])));
const RUN_LABEL = { estimate: "Estimate", engine: "Predict startup", explain: "Explain", perf: "Predict", plan: "Plan", simulate: "Simulate", train: "Estimate training" };

let current = "estimate";

/** Show one view (from the URL hash); the others are hidden. */
function show(name, focus) {
  if (!VIEWS[name]) name = "estimate";
  current = name;
  for (const v of Object.keys(VIEWS)) $(`view-${v}`).hidden = v !== name;
  for (const a of document.querySelectorAll("nav#views a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (name === "engine" && !$("engine-command").value.trim()) engine.rebuild();
  if (name === "plans" && $("view-plans").dataset.state !== "error") runView("plans"); // plans saved meanwhile appear
  if (focus) {
    const h = $(`h-${name}`);
    h.setAttribute("tabindex", "-1");
    h.focus();
  }
}

const runView = (name) => run(name, (out) => VIEWS[name].submit(out));

/** A change to the scenario makes every shown result stale: clear them rather than show old numbers. */
function scenarioChanged() {
  for (const name of Object.keys(VIEWS)) {
    const state = $(`view-${name}`).dataset.state;
    if (name !== "plans" && ["ready", "error", "loading"].includes(state)) reset(name, `The scenario changed: press ${RUN_LABEL[name]} to recompute.`);
  }
  if (!$("engine-kind").dataset.edited) engine.rebuild();
}

async function openPlan(id) {
  const p = await api(`/api/plans/${encodeURIComponent(id)}`);
  const view = BY_KIND[p.kind];
  if (!view) throw new Error(`a saved plan of kind ${String(p.kind)} cannot be shown by this page`);
  fillScenario(p.scenario);
  view.fill(p.scenario || {}, p.kind);
  history.replaceState(null, "", `/?plan=${encodeURIComponent(p.id)}#${view.name}`);
  show(view.name);
  await run(view.name, async (out) => {
    add(out, el("p", { class: "saved-note", "data-testid": "saved-note" }, `Saved plan "${p.name || p.id}" (${p.id}), ${when(p.created_at)}, shown as it was saved.`));
    view.render(out, p.scenario || {}, p.result || {}, p.kind);
    if (view.afterOpen) await view.afterOpen(p.scenario || {}, p.result || {});
  });
}

/** A server with `--auth tokens` answers 401: ask for the token, then start again with it. */
function setUpAuth() {
  onUnauthorized.handler = () => {
    $("auth").hidden = false;
    if (token.get()) $("api-token").setAttribute("aria-invalid", "true");
  };
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token.set($("api-token").value.trim());
    location.reload();
  });
}

async function init() {
  setUpAuth();
  for (const form of document.querySelectorAll("form.view-form")) {
    form.addEventListener("submit", (ev) => { ev.preventDefault(); runView(form.dataset.view); });
  }
  $("scenario").addEventListener("submit", (ev) => { ev.preventDefault(); runView(current); });
  $("scenario").addEventListener("change", scenarioChanged);
  $("model").addEventListener("input", () => clearUpload());
  $("config-file").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (file) await readUpload(file).catch((e) => showError(current, e));
    scenarioChanged();
  });
  $("engine-kind").addEventListener("change", () => engine.rebuild());
  $("engine-command").addEventListener("input", () => { $("engine-kind").dataset.edited = "1"; });
  $("engine-fill").addEventListener("click", () => { delete $("engine-kind").dataset.edited; engine.rebuild(); });
  $("explain-file").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (file) $("explain-log").value = await file.text();
  });
  window.addEventListener("hashchange", () => show(location.hash.slice(1), true));

  const [models, gpus] = await Promise.all([api("/api/models"), api("/api/gpus")]);
  $("model-list").replaceChildren(...models.map((m) => el("option", { value: m.id }, `${num(m.params / 1e9, 1)} B parameters`)));
  $("gpu").append(...gpus.map((g) => el("option", { value: g.name }, `${g.name} (${num(g.memory_gib, 0)} GiB)`)));
  const h100 = gpus.find((g) => (g.aliases || []).some((a) => a.toUpperCase() === "H100-80GB")) || gpus.find((g) => /H100/.test(g.name));
  $("gpu").value = h100 ? h100.name : "";
  plan.setGpus(gpus, $("gpu").value);
  engine.rebuild();

  const planId = new URLSearchParams(location.search).get("plan");
  if (planId) {
    try {
      await openPlan(planId);
    } catch (e) {
      $("view-plans").dataset.state = "error"; // show the error, not an automatic list run
      show("plans");
      showError("plans", e);
      document.body.dataset.ready = "error";
    }
    return;
  }
  show(location.hash.slice(1) || "estimate");
  if (current === "estimate") await runView("estimate");
  else if (current !== "plans") document.body.dataset.ready = "1";
}

init().catch((e) => { showError(current, e); document.body.dataset.ready = "error"; });
