// Server paging without a total: the API answers one page at a time
// (newest first), so a list of a million tasks costs one page of data.
// "Next" is offered while a page comes back full.

import { h } from "./dom.js";

export const PAGE_SIZES = [20, 50, 100];

// pager({page, pageSize, count, go(page, pageSize)})
export function pager({ page, pageSize, count, go }) {
  const jump = h("input", { type: "number", min: "1", value: String(page + 1), "aria-label": "page number",
    class: "page-input" });
  return h("nav", { class: "pager", "aria-label": "pages" },
    h("button", { type: "button", disabled: page <= 0, on: { click: () => go(0, pageSize) } }, "« First"),
    h("button", { type: "button", disabled: page <= 0, "data-action": "prev-page",
      on: { click: () => go(page - 1, pageSize) } }, "‹ Previous"),
    h("span", { class: "page-label" }, `Page ${page + 1}`),
    h("button", { type: "button", disabled: count < pageSize, "data-action": "next-page",
      on: { click: () => go(page + 1, pageSize) } }, "Next ›"),
    h("form", { class: "inline", on: { submit: (e) => { e.preventDefault(); go(Math.max(0, (parseInt(jump.value, 10) || 1) - 1), pageSize); } } },
      h("label", {}, "Go to ", jump), h("button", { type: "submit" }, "Go")),
    h("label", {}, "Per page ",
      h("select", { "aria-label": "page size", on: { change: (e) => go(0, parseInt(e.target.value, 10)) } },
        PAGE_SIZES.map((n) => h("option", { value: String(n), selected: n === pageSize }, String(n))))),
  );
}

// The page and page size of a route's query (page from 0).
export function pageOf(query, prefix = "") {
  const page = Math.max(0, parseInt(query.get(prefix + "page") || "0", 10) || 0);
  let size = parseInt(query.get(prefix + "page_size") || "50", 10) || 50;
  if (!PAGE_SIZES.includes(size)) size = 50;
  return { page, pageSize: size };
}
