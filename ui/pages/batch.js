// Batch page: its statistics, its DAG drawn with each task's status (or a
// table, always for batches over GRAPH_MAX tasks), refreshed live with one
// request (GET /batches/{id}/dag) per REFRESH_MS; buttons stop (DELETE) and,
// where the server has them, pause and resume.

import { h, link, fieldList } from "../lib/dom.js";
import { api } from "../lib/api.js";
import { timeEl } from "../lib/format.js";
import { statusBadge, STATUSES, TERMINAL } from "../lib/status.js";
import { confirmAction, errorBox, notice } from "../lib/dialogs.js";
import { probe } from "../lib/capabilities.js";
import { updateRows } from "../lib/rows.js";
import { countsView } from "./batches.js";
import { layoutDag, warmUp } from "./dag/layout.js";
import { GraphView } from "./dag/graph-view.js";

export const GRAPH_MAX = 2000;
const REFRESH_MS = 5000;
const REFRESH_BIG_MS = 15000; // big batches: their DAG answer is large
const TABLE_PAGE = 200;

function countsOf(tasks) {
  const c = {};
  for (const t of tasks) c[t.status.toLowerCase()] = (c[t.status.toLowerCase()] || 0) + 1;
  return c;
}

function structureOf(dag) {
  return dag.tasks.length + ":" + dag.links.length + ":" + (dag.tasks[0]?.id || "") + ":" + (dag.tasks.at(-1)?.id || "");
}

function legend() {
  return h("ul", { class: "legend", "aria-label": "legend" },
    STATUSES.map((s) => h("li", {}, statusBadge(s))),
    h("li", {}, h("span", { class: "edge-sample" }, "──▶"), " requires success"),
    h("li", {}, h("span", { class: "edge-sample optional" }, "┄┄▶"), " does not require success"));
}

// The table view: client-side pages of TABLE_PAGE tasks, keyed rows.
class TaskTable {
  constructor(parentsOf) {
    this.page = 0;
    this.tasks = [];
    this.parentsOf = parentsOf;
    this.tbody = h("tbody", {});
    this.nav = h("div", { class: "pager" });
    this.el = h("div", { id: "batch-table" },
      h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["Status", "Local id", "Name", "Kind", "Started", "Ended", "Parents"]
          .map((c) => h("th", { scope: "col" }, c)))), this.tbody), this.nav);
  }

  update(tasks) {
    this.tasks = tasks;
    const pages = Math.max(1, Math.ceil(tasks.length / TABLE_PAGE));
    this.page = Math.min(this.page, pages - 1);
    const slice = tasks.slice(this.page * TABLE_PAGE, (this.page + 1) * TABLE_PAGE);
    updateRows(this.tbody, slice, (t) => t.id, (t) => h("tr", {},
      h("td", {}, statusBadge(t.status)), h("td", {}, t.local_id || ""),
      h("td", {}, link(`/tasks/${t.id}`, t.name)), h("td", {}, t.kind),
      h("td", {}, timeEl(t.started_at)), h("td", {}, timeEl(t.ended_at)),
      h("td", { class: "num" }, String(this.parentsOf.get(t.id) || 0))));
    const go = (p) => { this.page = p; this.update(this.tasks); };
    this.nav.replaceChildren(
      h("button", { type: "button", disabled: this.page === 0, on: { click: () => go(this.page - 1) } }, "‹ Previous"),
      h("span", { class: "page-label" }, `Tasks ${this.page * TABLE_PAGE + 1}–${this.page * TABLE_PAGE + slice.length} of ${tasks.length}`),
      h("button", { type: "button", disabled: this.page >= pages - 1, on: { click: () => go(this.page + 1) } }, "Next ›"));
  }
}

export default {
  id: "batch",
  navOf: "batches",
  route: /^\/batches\/(?<id>[^/]+)$/,
  title: (p) => `Batch ${p.id.slice(0, 8)}`,
  async mount(view, ctx) {
    const id = ctx.params.id;
    const t0 = performance.now();
    const mode = ctx.query.get("view") === "table" ? "table" : "graph";
    warmUp();
    const [info, dag] = await Promise.all([api("GET", `/batches/${id}`), api("GET", `/batches/${id}/dag`)]);
    if (!ctx.isCurrent()) return;
    const fetchedMs = Math.round(performance.now() - t0);
    const parentsOf = new Map();
    for (const l of dag.links) parentsOf.set(l.child_id, (parentsOf.get(l.child_id) || 0) + 1);

    const stats = h("div", { id: "batch-stats" });
    const msg = h("div", { class: "action-result" });
    const body = h("div", { class: "dag-box", id: "dag-box", tabindex: "-1" });
    const pauseSupport = await probe(`/batches/${id}/pause`, "action");
    let syncPause = () => {};
    const renderStats = (tasks) => stats.replaceChildren(fieldList([
      ["Requester", info.requester], ["Created", timeEl(info.created_at)], ["Tasks", String(tasks.length)],
      ["Statuses", countsView(countsOf(tasks))],
      ["Paused", pauseSupport.available ? String(!!info.paused) : "— (batch pause not available on this server)"]]));

    const run = async (action) => {
      msg.replaceChildren();
      try {
        if (action === "stop") {
          const open = dag.tasks.filter((t) => !TERMINAL.has(t.status)).length;
          if (!await confirmAction({ title: "Stop this batch?", confirmLabel: "Stop batch",
            message: `Every task of the batch that has not ended (${open} now) will be Canceled. This cannot be undone.` })) return;
          await api("DELETE", `/batches/${id}`);
        } else {
          await api("POST", `/batches/${id}/${action}`);
          Object.assign(info, await api("GET", `/batches/${id}`));
          syncPause();
        }
        notice(`${action}: done`);
        await refresh();
      } catch (e) {
        if (e.status === 404 && action !== "stop") { e.notAvailable = true; }
        msg.replaceChildren(errorBox(e));
      }
    };
    const btn = (action, label, cls, enabled = true, why = null) => h("button", { type: "button", class: cls,
      "data-action": action, disabled: !enabled, title: why, on: { click: () => run(action) } }, label);
    const pauseWhy = "not available on this server";
    const pauseBtn = btn("pause", "Pause batch", "", pauseSupport.available, pauseSupport.available ? null : pauseWhy);
    const resumeBtn = btn("resume", "Resume batch", "", pauseSupport.available, pauseSupport.available ? null : pauseWhy);
    // Only the one that applies: the other would answer 409.
    syncPause = () => {
      pauseBtn.disabled = !pauseSupport.available || !!info.paused;
      resumeBtn.disabled = !pauseSupport.available || !info.paused;
    };
    syncPause();
    view.append(
      h("div", { class: "page-head" },
        h("h1", {}, "Batch ", h("span", { class: "mono" }, id)),
        h("div", { class: "actions", id: "batch-buttons" },
          pauseBtn,
          resumeBtn,
          btn("stop", "Stop batch…", "danger"),
          pauseSupport.available ? null : h("span", { class: "muted small" }, "Batch pause/resume: not available on this server."))),
      msg, stats);
    renderStats(dag.tasks);

    const big = dag.tasks.length > GRAPH_MAX;
    const showGraph = mode === "graph" && !big;
    const toggle = h("div", { class: "view-toggle" },
      h("a", { href: `#/batches/${id}`, "aria-current": showGraph ? "page" : null }, "Graph"), " ",
      h("a", { href: `#/batches/${id}?view=table`, "aria-current": showGraph ? null : "page" }, "Table"));
    view.append(h("h2", {}, "Tasks"), toggle);
    if (big && mode === "graph") {
      view.append(h("p", { class: "notice warn", role: "status", id: "graph-fallback" },
        `This batch has ${dag.tasks.length} tasks: graphs are drawn up to ${GRAPH_MAX} tasks, so it is shown as a table.`));
    }
    view.append(body);

    let graph = null;
    let table = null;
    let structure = structureOf(dag);
    const draw = async (d) => {
      body.replaceChildren(h("p", { class: "muted" }, `Laying out ${d.tasks.length} tasks…`));
      const tl = performance.now();
      const layout = await layoutDag(d);
      if (!ctx.isCurrent()) return;
      body.dataset.layoutMs = String(Math.round(performance.now() - tl));
      graph = new GraphView(layout, d.tasks);
      const zoomBar = h("div", { class: "zoom" },
        h("button", { type: "button", on: { click: () => graph.fit(scroller) } }, "Fit"),
        h("button", { type: "button", on: { click: () => graph.zoom(graph.scale * 1.25) }, "aria-label": "zoom in" }, "+"),
        h("button", { type: "button", on: { click: () => graph.zoom(graph.scale / 1.25) }, "aria-label": "zoom out" }, "−"),
        h("button", { type: "button", on: { click: () => graph.zoom(1) } }, "100%"));
      const scroller = h("div", { class: "dag-scroll" }, graph.svg);
      body.replaceChildren(zoomBar, scroller, legend());
      graph.zoom(1);
      if (layout.width > scroller.clientWidth) graph.fit(scroller);
      body.dataset.fetchMs = String(fetchedMs);
      body.dataset.drawMs = String(Math.round(performance.now() - t0));
      body.dataset.tasks = String(d.tasks.length);
    };
    if (showGraph) {
      await draw(dag);
    } else {
      table = new TaskTable(parentsOf);
      table.update(dag.tasks);
      body.replaceChildren(table.el, legend());
      body.dataset.drawMs = String(Math.round(performance.now() - t0));
    }

    const refresh = async () => {
      const d = await api("GET", `/batches/${id}/dag`);
      if (!ctx.isCurrent()) return;
      dag.tasks = d.tasks;
      renderStats(d.tasks);
      if (graph) {
        const s = structureOf(d);
        if (s !== structure) { structure = s; await draw(d); } else graph.update(d.tasks);
      }
      if (table) table.update(d.tasks);
    };
    ctx.live(refresh, big ? REFRESH_BIG_MS : REFRESH_MS);
  },
};
