// DOM building with text nodes only: data never goes through an HTML parser, so a saved plan whose
// names contain markup shows that markup as text and can never run script.
"use strict";

export const $ = (id) => document.getElementById(id);

/** <tag attrs...>children</tag>. Attribute names come from code; values and children are data-safe. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  add(node, children);
  return node;
}

/** Append children (nodes, strings, numbers, nested arrays; null skipped) as nodes and text nodes. */
export function add(node, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A table: head is a list of column titles; each row a list of cells (a node, text, or {text, ...attrs}). */
export function table(head, rows, attrs) {
  const cell = (tag, c) => (c && typeof c === "object" && !(c instanceof Node) && !Array.isArray(c) ? el(tag, c.attrs, c.text) : el(tag, null, c));
  const body = rows.map((r) => (r instanceof Node ? r : el("tr", null, r.map((c) => cell("td", c)))));
  // Each cell knows its column, so a narrow screen can show a wide table as one card per row.
  for (const tr of body) [...tr.children].forEach((td, i) => { if (head[i] && !td.dataset.label) td.dataset.label = head[i]; });
  // A header sits over its column: left over text columns, right over numbers.
  const textColumn = (i) => body.length > 0 && body[0].children[i] && body[0].children[i].classList.contains("text");
  const stack = head.length >= 4 ? "stack" : null;
  const t = el("table", { ...attrs, class: stack }, el("thead", null, el("tr", null, head.map((h, i) => el("th", { scope: "col", class: textColumn(i) ? "text" : null }, h)))),
    el("tbody", null, body));
  // A wide table scrolls inside its own box (reachable by keyboard), never the page.
  return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": attrs && attrs["aria-label"] ? attrs["aria-label"] : "table" }, t);
}

/** Two-column figure/value table. */
export const figures = (rows, attrs) => table(["figure", "value"], rows, attrs);

/** A bullet list of strings (empty lists render nothing). */
export const list = (items, cls) => (items && items.length ? el("ul", { class: cls }, items.map((i) => el("li", null, String(i)))) : null);

/** A collapsed list of assumptions. */
export const assumptions = (items) => (items && items.length ? el("details", { class: "panel" }, el("summary", null, `Assumptions (${items.length})`), list(items)) : null);
