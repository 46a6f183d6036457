// Batches list: GET /batches with its filters (requester, kind, status,
// name, created_after, created_before), server paging, refreshed every 5 s.

import { h, link } from "../lib/dom.js";
import { timeEl, localInputToUtc, utcToLocalInput, zoneName } from "../lib/format.js";
import { statusBadge, STATUSES } from "../lib/status.js";
import { pageOf } from "../lib/pager.js";
import { livePage } from "../lib/list.js";

const FILTERS = ["requester", "kind", "status", "name", "created_after", "created_before"];

// "3 ✓ Success, 1 ▶ Running": every non-zero count, labeled.
export function countsView(counts) {
  const items = STATUSES.map((s) => [s, counts?.[s.toLowerCase()] ?? counts?.[s] ?? 0]).filter(([, n]) => n > 0);
  if (!items.length) return h("span", { class: "muted" }, "no tasks");
  return h("span", { class: "counts" }, items.map(([s, n]) => h("span", { class: "count" }, `${n} `, statusBadge(s))));
}

function batchRow(b) {
  return h("tr", {},
    h("td", {}, link(`/batches/${b.batch_id}`, b.batch_id.slice(0, 8), { class: "mono", title: b.batch_id })),
    h("td", {}, timeEl(b.created_at || b.first_created_at)),
    h("td", {}, b.requester || ""),
    h("td", { class: "num" }, String(b.total_tasks)),
    h("td", {}, countsView(b.status_counts)),
    h("td", {}, (b.kinds || []).join(", ")),
    h("td", {}, timeEl(b.latest_updated_at)),
    h("td", {}, b.paused ? "paused" : ""));
}

function filterForm(query, go) {
  const val = (k) => query.get(k) || "";
  const form = h("form", { class: "filters", "aria-label": "filters", on: { submit: (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(form));
    d.created_after = localInputToUtc(d.created_after);
    d.created_before = localInputToUtc(d.created_before);
    go(d);
  } } },
  h("label", {}, "Requester ", h("input", { name: "requester", value: val("requester"), size: 12 })),
  h("label", {}, "Has kind ", h("input", { name: "kind", value: val("kind"), size: 12 })),
  h("label", {}, "Has status ", h("select", { name: "status" }, h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: val("status") === s }, s)))),
  h("label", {}, "Has name containing ", h("input", { name: "name", value: val("name"), size: 12 })),
  h("label", { title: `in your time zone (${zoneName})` }, "Created after ",
    h("input", { name: "created_after", type: "datetime-local", step: "1", value: utcToLocalInput(val("created_after")) })),
  h("label", { title: `in your time zone (${zoneName})` }, "Created before ",
    h("input", { name: "created_before", type: "datetime-local", step: "1", value: utcToLocalInput(val("created_before")) })),
  h("button", { type: "submit" }, "Apply"),
  h("button", { type: "button", class: "secondary", on: { click: () => go({}) } }, "Clear"));
  return form;
}

export default {
  id: "batches",
  nav: "Batches",
  navPath: "/batches",
  route: /^\/batches\/?$/,
  title: () => "Batches",
  async mount(view, ctx) {
    const { page, pageSize } = pageOf(ctx.query);
    const filters = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || ""]));
    const go = (f, p = 0, size = pageSize) =>
      ctx.navigate("/batches", { ...f, page: p || "", page_size: size === 50 ? "" : size });
    const tbody = h("tbody", {});
    const status = h("div", { class: "list-status" });
    const pagerSlot = h("div", {});
    view.append(h("h1", {}, "Batches"), filterForm(ctx.query, (f) => go(f)), status,
      h("table", { class: "list", id: "batches-table" },
        h("thead", {}, h("tr", {}, ["Batch", "Created", "Requester", "Tasks", "Statuses", "Kinds", "Last update", ""]
          .map((c) => h("th", { scope: "col" }, c)))), tbody),
      pagerSlot);
    await livePage(ctx, { path: "/batches", query: filters, page, pageSize, tbody, keyOf: (b) => b.batch_id,
      row: batchRow, status, pagerSlot, empty: "No batch matches.", go: (p, s) => go(filters, p, s) });
  },
};
