// Tasks list: every filter of GET /tasks (status, kind, name, batch_id,
// metadata, timeout), server paging, refreshed every 5 s in place.

import { h, link } from "../lib/dom.js";
import { timeEl } from "../lib/format.js";
import { statusBadge, STATUSES } from "../lib/status.js";
import { pageOf } from "../lib/pager.js";
import { livePage } from "../lib/list.js";

const FILTERS = ["status", "kind", "name", "batch_id", "metadata", "timeout"];

export function taskRow(t) {
  return h("tr", {},
    h("td", {}, statusBadge(t.status)),
    h("td", {}, link(`/tasks/${t.id}`, t.name || t.id)),
    h("td", {}, t.kind),
    h("td", { class: "num" }, String(t.priority ?? "")),
    h("td", {}, timeEl(t.created_at)),
    h("td", {}, timeEl(t.started_at)),
    h("td", {}, timeEl(t.ended_at)),
    h("td", { class: "num" }, `${t.success ?? 0} / ${t.failures ?? 0}${t.expected_count != null ? ` of ${t.expected_count}` : ""}`),
    h("td", {}, t.batch_id ? link(`/batches/${t.batch_id}`, t.batch_id.slice(0, 8), { title: t.batch_id, class: "mono" }) : ""));
}

export const TASK_HEADERS = ["Status", "Name", "Kind", "Priority", "Created", "Started", "Ended",
  "Success / failures", "Batch"];

function filterForm(query, go) {
  const val = (k) => query.get(k) || "";
  const metadata = h("input", { name: "metadata", value: val("metadata"), placeholder: '{"tenant_id": 42}',
    class: "mono wide" });
  const form = h("form", { class: "filters", "aria-label": "filters", on: { submit } },
    h("label", {}, "Status ", h("select", { name: "status" },
      h("option", { value: "" }, "any"),
      STATUSES.map((s) => h("option", { value: s, selected: val("status") === s }, s)))),
    h("label", {}, "Kind ", h("input", { name: "kind", value: val("kind"), size: 14 })),
    h("label", {}, "Name contains ", h("input", { name: "name", value: val("name"), size: 14 })),
    h("label", {}, "Batch id ", h("input", { name: "batch_id", value: val("batch_id"), size: 36, class: "mono" })),
    h("label", {}, "Metadata contains ", metadata),
    h("label", {}, "Timeout (s) ", h("input", { name: "timeout", type: "number", min: "1", value: val("timeout"), size: 6 })),
    h("button", { type: "submit" }, "Apply"),
    h("button", { type: "button", class: "secondary", on: { click: () => go({}) } }, "Clear"));
  function submit(e) {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    if (data.metadata) {
      try {
        const m = JSON.parse(data.metadata);
        if (!m || typeof m !== "object" || Array.isArray(m)) throw new Error("not an object");
        metadata.setCustomValidity("");
      } catch {
        metadata.setCustomValidity("metadata must be a JSON object, e.g. {\"tenant_id\": 42}");
        metadata.reportValidity();
        return;
      }
    }
    go(data);
  }
  return form;
}

export default {
  id: "tasks",
  nav: "Tasks",
  navPath: "/tasks",
  route: /^\/tasks\/?$/,
  title: () => "Tasks",
  async mount(view, ctx) {
    const { query } = ctx;
    const { page, pageSize } = pageOf(query);
    const filters = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) || ""]));
    const go = (f, p = 0, size = pageSize) =>
      ctx.navigate("/tasks", { ...f, page: p || "", page_size: size === 50 ? "" : size });
    const tbody = h("tbody", {});
    const status = h("div", { class: "list-status" });
    const pagerSlot = h("div", {});
    view.append(
      h("h1", {}, "Tasks"),
      filterForm(query, (f) => go(f)),
      status,
      h("table", { class: "list", id: "tasks-table" },
        h("thead", {}, h("tr", {}, TASK_HEADERS.map((t) => h("th", { scope: "col" }, t)))),
        tbody),
      pagerSlot);
    await livePage(ctx, { path: "/tasks", query: filters, page, pageSize, tbody, keyOf: (t) => t.id,
      row: taskRow, status, pagerSlot, empty: "No task matches.", go: (p, s) => go(filters, p, s) });
  },
};
