// Task page: every field, actions, dependencies and children (from the
// batch's DAG), paged history and blockers; buttons cancel, pause, resume,
// retry (with its "downstream" option), delete and restore (soft delete). The task is re-read every 3 s;
// history, blockers and children are re-read when it changed.

import { h, link } from "../lib/dom.js";
import { api } from "../lib/api.js";
import { statusBadge, TERMINAL } from "../lib/status.js";
import { confirmAction, errorBox, notice } from "../lib/dialogs.js";
import { pager, pageOf } from "../lib/pager.js";
import { taskFields, actionsTable, relatives, historyTable, blockersView } from "./task-parts.js";

const REFRESH_MS = 3000;
const HOLDABLE = new Set(["Waiting", "Pending"]); // what pause takes
const RETRYABLE = new Set(["Failure", "Canceled", "Skipped"]);

function buttons(t, run) {
  const s = t.status;
  const btn = (action, label, enabled, why, cls = "") => h("button", {
    type: "button", class: cls, "data-action": action, disabled: !enabled, title: enabled ? null : why,
    on: { click: () => run(action) } }, label);
  return h("div", { class: "actions", id: "task-buttons" },
    btn("pause", "Pause", HOLDABLE.has(s), "only a Waiting or Pending task can be paused"),
    btn("resume", "Resume", s === "Paused", "only a Paused task can be resumed"),
    btn("retry", "Retry…", RETRYABLE.has(s), "only a Failure or Canceled task can be retried"),
    btn("cancel", "Cancel task…", !TERMINAL.has(s), "the task has ended", "danger"),
    t.deleted_at
      ? btn("restore", "Restore…", true, "")
      : btn("delete", "Delete…", TERMINAL.has(s), "only an ended task can be deleted", "danger"));
}

async function perform(action, t) {
  const id = t.id;
  if (action === "pause") return api("POST", `/tasks/${id}/pause`);
  if (action === "resume") return api("POST", `/tasks/${id}/resume`);
  if (action === "cancel") {
    const ok = await confirmAction({ title: "Cancel this task?",
      message: `“${t.name}” (${t.status}) will be Canceled; a started task's on_cancel webhooks fire. This cannot be undone.`,
      confirmLabel: "Cancel task" });
    return ok ? api("DELETE", `/tasks/${id}`) : null;
  }
  if (action === "delete") {
    const ok = await confirmAction({ title: "Delete this task?",
      message: `“${t.name}” (${t.status}) leaves the lists and counts; it can be restored until the purge removes it for good.`,
      confirmLabel: "Delete task" });
    return ok ? api("POST", `/tasks/${id}/delete`) : null;
  }
  if (action === "restore") {
    const ok = await confirmAction({ title: "Restore this task?",
      message: `“${t.name}” comes back in the lists and counts.`, confirmLabel: "Restore" });
    return ok ? api("POST", `/tasks/${id}/restore`) : null;
  }
  if (action === "retry") {
    const downstream = h("input", { type: "checkbox", id: "retry-downstream", name: "downstream" });
    const ok = await confirmAction({ title: "Retry this task?",
      message: `“${t.name}” (${t.status}) starts again as a new attempt.`,
      extra: h("p", {}, h("label", {}, downstream,
        " Also re-run the descendants that failed or were canceled because of it (downstream)")),
      confirmLabel: "Retry" });
    return ok ? api("POST", `/tasks/${id}/retry`, { query: { downstream: downstream.checked ? "true" : "" } }) : null;
  }
  return null;
}

export default {
  id: "task",
  navOf: "tasks",
  route: /^\/tasks\/(?<id>[^/]+)$/,
  title: (p) => `Task ${p.id.slice(0, 8)}`,
  async mount(view, ctx) {
    const id = ctx.params.id;
    const hist = pageOf(ctx.query, "h");
    const head = h("div", { class: "page-head" });
    const msg = h("div", { class: "action-result" });
    const fields = h("div", {});
    const rel = h("div", {});
    const blockers = h("div", { id: "blockers-slot" });
    const history = h("div", { id: "history-slot" });
    const actions = h("div", {});
    view.append(head, msg, h("div", { class: "two-col" },
      h("section", {}, h("h2", {}, "Fields"), fields),
      h("div", {}, h("section", {}, h("h2", {}, "Why is it not running?"), blockers), rel)),
    h("section", {}, h("h2", {}, "Actions"), actions),
    h("section", {}, h("h2", {}, "History"), history));

    let task = null;
    let sig = "";
    const loadHistory = async () => {
      try {
        const ev = await api("GET", `/tasks/${id}/history`, { query: { page: hist.page, page_size: hist.pageSize } });
        history.replaceChildren(historyTable(ev), pager({ page: hist.page, pageSize: hist.pageSize, count: ev.length,
          go: (p, s) => ctx.navigate(`/tasks/${id}`, { hpage: p || "", hpage_size: s === 50 ? "" : s }) }));
      } catch (e) { history.replaceChildren(errorBox(e)); }
    };
    const loadBlockers = async () => {
      if (task.status === "Running" || task.status === "Claimed" || TERMINAL.has(task.status)) {
        blockers.replaceChildren(blockersView(null));
        return;
      }
      try { blockers.replaceChildren(blockersView(await api("GET", `/tasks/${id}/blockers`))); }
      catch (e) { blockers.replaceChildren(errorBox(e)); }
    };
    const loadRelatives = async () => {
      rel.replaceChildren(relatives(task, null));
      if (!task.batch_id) return;
      try { rel.replaceChildren(relatives(task, await api("GET", `/batches/${task.batch_id}/dag`))); }
      catch (e) { rel.replaceChildren(relatives(task, { tasks: [], links: [] }), errorBox(e)); }
    };
    const run = async (action) => {
      msg.replaceChildren();
      try {
        const r = await perform(action, task);
        if (r === null) return;
        notice(`${action}: done`);
        await refresh(true);
      } catch (e) { msg.replaceChildren(errorBox(e)); }
    };
    const refresh = async (force = false) => {
      const t = await api("GET", `/tasks/${id}`);
      if (!ctx.isCurrent()) return;
      const s = JSON.stringify(t);
      if (!force && s === sig) return;
      sig = s;
      task = t;
      head.replaceChildren(h("h1", {}, statusBadge(t.status), " ", t.name),
        h("p", { class: "muted" }, `kind ${t.kind} · local id ${t.local_id} · batch `,
          link(`/batches/${t.batch_id}`, t.batch_id.slice(0, 8), { class: "mono", title: t.batch_id })),
        buttons(t, run));
      fields.replaceChildren(taskFields(t));
      actions.replaceChildren(actionsTable(t.actions));
      await Promise.all([loadHistory(), loadBlockers(), loadRelatives()]);
    };
    await refresh();
    ctx.live(() => refresh(), REFRESH_MS);
  },
};
