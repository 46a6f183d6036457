// Tiny DOM helpers: build elements without HTML strings (no injection, no
// inline styles, which the Content-Security-Policy would refuse anyway).

// h("a", {href: "#/x", class: "c", on: {click: fn}}, "text", child, ...)
// Attributes whose value is null, undefined or false are left out.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// A link to a route of the UI (hash routing: works from any static server).
export function link(route, text, attrs = {}) {
  return h("a", { href: "#" + route, ...attrs }, text);
}

export function pre(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// <dl> of [label, value] pairs; a value may be a node or text.
export function fieldList(pairs) {
  return h("dl", { class: "fields" },
    pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === null || v === undefined ? dash() : v)]));
}

export function dash() {
  return h("span", { class: "muted" }, "—");
}
