// Dead letters: end and cancel webhook calls that failed every attempt
// (GET /dead-letters, paged), each with a confirmed replay
// (POST /dead-letters/{id}/replay). Refreshed every 5 s.

import { h, link } from "../lib/dom.js";
import { api } from "../lib/api.js";
import { timeEl } from "../lib/format.js";
import { confirmAction, errorBox, notice } from "../lib/dialogs.js";
import { pager, pageOf } from "../lib/pager.js";
import { updateRows } from "../lib/rows.js";

const REFRESH_MS = 5000;

export default {
  id: "dead-letters",
  nav: "Dead letters",
  navPath: "/dead-letters",
  route: /^\/dead-letters\/?$/,
  title: () => "Dead letters",
  async mount(view, ctx) {
    const { page, pageSize } = pageOf(ctx.query);
    const tbody = h("tbody", {});
    const status = h("div", { class: "list-status" });
    const pagerSlot = h("div", {});
    view.append(h("h1", {}, "Dead letters"),
      h("p", { class: "muted" }, "End and cancel webhook calls that failed every attempt. A replay queues the call again; it leaves this list when it succeeds."),
      status,
      h("table", { class: "list", id: "dead-letters-table" },
        h("thead", {}, h("tr", {}, ["Failed", "Task", "Trigger", "URL", "Attempts", "Last error", ""]
          .map((c) => h("th", { scope: "col" }, c)))), tbody),
      pagerSlot);

    const replay = async (d) => {
      if (!await confirmAction({ title: "Replay this call?", confirmLabel: "Replay",
        message: `The ${d.trigger} call to ${d.url} for task ${d.task_id} is made again.` })) return;
      try {
        await api("POST", `/dead-letters/${d.id}/replay`);
        notice(`dead letter ${d.id}: queued again`);
        await load();
      } catch (e) { status.replaceChildren(errorBox(e)); }
    };
    const row = (d) => h("tr", {},
      h("td", {}, timeEl(d.failed_at)),
      h("td", {}, link(`/tasks/${d.task_id}`, d.task_id.slice(0, 8), { class: "mono", title: d.task_id })),
      h("td", {}, d.trigger),
      h("td", { class: "mono url" }, d.url),
      h("td", { class: "num" }, String(d.attempts)),
      h("td", { class: "small" }, d.last_error || ""),
      h("td", {}, h("button", { type: "button", "data-action": "replay", "data-id": String(d.id),
        on: { click: () => replay(d) } }, "Replay…")));
    const load = async () => {
      try {
        const items = await api("GET", "/dead-letters", { query: { page, page_size: pageSize } });
        if (!ctx.isCurrent()) return;
        updateRows(tbody, items, (d) => d.id, row);
        status.replaceChildren(items.length ? "" : h("p", { class: "muted" }, "No dead letters."));
        pagerSlot.replaceChildren(pager({ page, pageSize, count: items.length,
          go: (p, s) => ctx.navigate("/dead-letters", { page: p || "", page_size: s === 50 ? "" : s }) }));
      } catch (e) {
        if (ctx.isCurrent()) status.replaceChildren(errorBox(e));
        throw e;
      }
    };
    await load().catch(() => {});
    ctx.live(load, REFRESH_MS);
  },
};
