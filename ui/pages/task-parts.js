// Pieces of the task page: the field list, actions, dependencies and
// children, history and blockers. Each takes data and returns elements.

import { h, link, pre, dash } from "../lib/dom.js";
import { timeEl } from "../lib/format.js";
import { statusBadge } from "../lib/status.js";

// Field order of the task object (API.md); any other field the server adds
// is shown after these, so a new field is never hidden.
const ORDER = ["id", "local_id", "name", "kind", "status", "priority", "timeout", "batch_id",
  "requester", "created_at", "started_at", "ended_at", "last_updated", "success", "failures",
  "expected_count", "failure_reason", "max_retries", "retry_count", "next_retry_at",
  "retry_backoff", "metadata", "output", "rules", "dependencies", "actions"];
const SHOWN_ELSEWHERE = new Set(["actions", "dependencies"]);

function fieldValue(key, v) {
  if (v === null || v === undefined) return dash();
  if (key === "status") return statusBadge(v);
  if (key === "batch_id") return link(`/batches/${v}`, v, { class: "mono" });
  if (key === "id") return h("span", { class: "mono" }, v);
  if (key.endsWith("_at") || key === "last_updated") return timeEl(v);
  if (key === "timeout") return `${v} s`;
  if (typeof v === "object") return pre(v);
  return String(v);
}

export function taskFields(t) {
  const keys = [...ORDER.filter((k) => k in t), ...Object.keys(t).filter((k) => !ORDER.includes(k))];
  return h("dl", { class: "fields", id: "task-fields" },
    keys.filter((k) => !SHOWN_ELSEWHERE.has(k)).map((k) =>
      [h("dt", {}, k), h("dd", { "data-field": k }, fieldValue(k, t[k]))]));
}

export function actionsTable(actions) {
  if (!actions || !actions.length) return h("p", { class: "muted" }, "No actions.");
  return h("table", { class: "list", id: "task-actions" },
    h("thead", {}, h("tr", {}, ["Trigger", "Condition", "Kind", "Verb", "URL", "Params"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, actions.map((a) => h("tr", {},
      h("td", {}, a.trigger || ""), h("td", {}, a.condition || dash()), h("td", {}, a.kind || ""),
      h("td", {}, a.params?.verb || "Post"), h("td", { class: "mono url" }, a.params?.url || ""),
      h("td", {}, h("details", {}, h("summary", {}, "params"), pre(a.params)))))));
}

// Dependencies (parents) and children, with their statuses from the batch DAG.
export function relatives(t, dag) {
  const byId = new Map((dag?.tasks || []).map((x) => [x.id, x]));
  const item = (id, extra) => {
    const x = byId.get(id);
    return h("li", {}, x ? statusBadge(x.status) : null, " ",
      link(`/tasks/${id}`, x ? (x.local_id || x.name) : id, { class: x ? "" : "mono" }), extra ? ` ${extra}` : "");
  };
  const deps = t.dependencies || [];
  const children = (dag?.links || []).filter((l) => l.parent_id === t.id);
  return h("div", { class: "relatives" },
    h("section", { id: "task-dependencies" }, h("h3", {}, `Dependencies (${deps.length})`),
      deps.length ? h("ul", {}, deps.map((d) => item(d.id, d.requires_success ? "(requires success)" : ""))) :
        h("p", { class: "muted" }, "None.")),
    h("section", { id: "task-children" }, h("h3", {}, `Children (${dag ? children.length : "…"})`),
      !dag ? h("p", { class: "muted" }, "Loading from the batch's DAG…") :
        children.length ? h("ul", {}, children.map((l) => item(l.child_id, l.requires_success ? "(requires success)" : ""))) :
          h("p", { class: "muted" }, "None.")));
}

export function historyTable(events) {
  if (!events.length) return h("p", { class: "muted" }, "No events on this page.");
  return h("table", { class: "list", id: "task-history" },
    h("thead", {}, h("tr", {}, ["At", "Event", "Actor", "From → to", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, events.map((e) => h("tr", {},
      h("td", {}, timeEl(e.at)), h("td", {}, e.event), h("td", {}, e.actor || ""),
      h("td", {}, e.from_status || e.to_status ? `${e.from_status || "—"} → ${e.to_status || "—"}` : ""),
      h("td", { class: "mono small" }, e.detail == null ? "" : JSON.stringify(e.detail))))));
}

function blockerText(b) {
  switch (b.type) {
    case "dependency":
      return [`waits for parent `, link(`/tasks/${b.task_id}`, b.task_id.slice(0, 8), { class: "mono", title: b.task_id }),
        " (", statusBadge(b.status), ")", b.requires_success ? ", which must succeed" : ""];
    case "rule":
      return [`concurrency rule full: ${b.current} of ${b.max} running for `, h("code", {}, JSON.stringify(b.key)),
        h("details", {}, h("summary", {}, "rule"), pre(b.rule))];
    case "paused": return ["paused by a user"];
    case "not_before": return ["not before ", timeEl(b.at)];
    case "retry_backoff": return ["waiting to retry at ", timeEl(b.at)];
    default: return [h("code", {}, JSON.stringify(b))];
  }
}

export function blockersView(data) {
  if (!data) return h("p", { class: "muted" }, "Nothing holds it: it is running or has ended.");
  if (!data.blockers.length) return h("p", {}, "Nothing holds it back: the worker takes it now.");
  return h("ul", { id: "task-blockers" }, data.blockers.map((b) => h("li", { "data-type": b.type }, blockerText(b))));
}
