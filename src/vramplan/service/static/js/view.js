// What every view shares: run a request with loading and error states that never leave stale
// results on screen, and a "save plan" bar that stores the request and its result.
"use strict";
import { api } from "./api.js";
import { $, el, add, list } from "./dom.js";

const runs = {}; // per view: the number of the latest run or reset; an older run's result is dropped

/** Clear a view's result, error and status (used before a run and when the scenario changes). */
export function reset(name, message) {
  runs[name] = (runs[name] || 0) + 1;
  const out = $(`${name}-out`);
  out.replaceChildren();
  out.hidden = true;
  showError(name, null);
  $(`${name}-status`).textContent = message || "";
  $(`view-${name}`).dataset.state = message ? "stale" : "";
}

/** A fix as the change it stands for, shown as text (never as HTML): a serving fix {field, value, why}
 * or a training fix {flag, change, total_bytes, cost}. */
export function fixText(fix) {
  if (fix.field !== undefined) return `${String(fix.field).replace(/_/g, " ")}: ${fix.value} (${fix.why})`;
  return `${fix.flag} (${fix.change}; cost: ${fix.cost})`;
}

export function showError(name, err) {
  const box = $(`${name}-error`);
  box.replaceChildren();
  box.hidden = !err;
  if (!err) return;
  add(box, String(err.message || err));
  if (err.reasons && err.reasons.length) add(box, [el("p", null, "Options tried:"), list(err.reasons)]);
  if (err.fixes && err.fixes.length) add(box, [el("p", null, "Changes that would make it fit:"), list(err.fixes.map(fixText))]);
}

/** Run ``task(box)``: "computing" while it runs, then the result, or the error alone. A run started
 * while the same view is computing is ignored; one overtaken by a scenario change is dropped. */
export async function run(name, task) {
  const section = $(`view-${name}`);
  if (section.dataset.state === "loading") return;
  const button = section.querySelector("form.view-form button[type=submit]");
  reset(name, "");
  const mine = runs[name];
  const current = () => runs[name] === mine;
  $(`${name}-status`).textContent = "Computing…";
  section.dataset.state = "loading";
  section.setAttribute("aria-busy", "true");
  document.body.dataset.ready = "";
  if (button) button.disabled = true;
  const out = $(`${name}-out`);
  const box = el("div");
  out.append(box);
  try {
    await task(box);
    if (!current()) return box.remove();
    out.hidden = false;
    $(`${name}-status`).textContent = "";
    section.dataset.state = "ready";
    document.body.dataset.ready = "1";
  } catch (e) {
    box.remove();
    if (!current()) return;
    out.hidden = true;
    $(`${name}-status`).textContent = "";
    showError(name, e);
    section.dataset.state = "error";
    document.body.dataset.ready = "error";
  } finally {
    section.removeAttribute("aria-busy");
    if (button) button.disabled = false;
    if (!current() && section.dataset.state === "loading") section.dataset.state = "stale";
  }
}

/** A "save this plan" bar: kind is the API route the scenario is a request body of. */
export function saveBar(name, kind, request, result, defaultName) {
  const prefix = name === "estimate" ? "" : `${name}-`;
  const input = el("input", { id: `${prefix}plan-name`, value: defaultName, maxlength: "200" });
  const message = el("span", { role: "status", "data-testid": `${prefix}permalink` });
  const button = el("button", { type: "button", id: name === "estimate" ? "save" : `${name}-save`, class: "secondary", "data-testid": `${prefix}save` }, "Save plan");
  button.addEventListener("click", async () => {
    button.disabled = true;
    message.replaceChildren("saving…");
    try {
      const p = await api("/api/plans", { name: input.value.trim() || defaultName, kind, scenario: request, result });
      const href = `/?plan=${encodeURIComponent(p.id)}`;
      history.replaceState(null, "", `${href}${location.hash}`);
      message.replaceChildren("saved: ", el("a", { href, "data-testid": `${prefix}permalink-link` }, `${location.origin}${href}`));
    } catch (e) {
      message.replaceChildren(`not saved: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return el("div", { class: "savebar" }, el("div", { class: "field" }, el("label", { for: input.id }, "Plan name"), input), button, message);
}
