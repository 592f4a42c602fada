// Saved plans: list, open (a permalink), delete.
"use strict";
import { api } from "../api.js";
import { add, el, table } from "../dom.js";
import { count, when } from "../format.js";

export const name = "plans";
export const kinds = [];
const KIND_NAMES = { estimate: "estimate", vllm: "vLLM", sglang: "SGLang", plan: "plan", perf: "perf", simulate: "simulate", train: "train", explain: "explain" };

export async function submit(out) {
  const d = await api("/api/plans?limit=100");
  render(out, null, d);
}

export function fill() {}

export function render(out, _req, d) {
  const items = Array.isArray(d.items) ? d.items : [];
  const rows = items.map((p) => {
    const del = el("button", { type: "button", class: "secondary danger", "aria-label": `Delete plan ${p.name || p.id}`, dataset: { delete: p.id } }, "Delete");
    const row = el("tr", { dataset: { plan: p.id } },
      el("td", { class: "text" }, p.name || "(no name)"), el("td", { class: "text" }, KIND_NAMES[p.kind] || String(p.kind)),
      el("td", { class: "text" }, when(p.created_at)),
      el("td", { class: "text" }, el("a", { href: `/?plan=${encodeURIComponent(p.id)}`, "aria-label": `Open plan ${p.name || p.id}` }, "Open"), " ", del));
    del.addEventListener("click", async () => {
      del.disabled = true;
      try {
        await api(`/api/plans/${encodeURIComponent(p.id)}`, null, "DELETE");
        row.remove();
        shown -= 1;
        total -= 1;
        counter.textContent = summary(shown, total);
      } catch (e) {
        del.disabled = false;
        del.textContent = `Delete failed: ${e.message}`;
      }
    });
    return row;
  });
  let shown = items.length;
  let total = typeof d.total === "number" ? d.total : shown;
  const summary = (n, all) => `${count(all, "saved plan")}${all > n ? `, the newest ${n} shown` : ""}`;
  const counter = el("p", { class: "subject", "data-testid": "plans-count" }, summary(shown, total));
  add(out, counter, items.length ? table(["name", "kind", "saved", "actions"], rows, { "aria-label": "saved plans", "data-testid": "plans-table" })
    : el("p", null, "No saved plans yet: run a view and press Save plan."));
}
