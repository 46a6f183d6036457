// A page for an optional endpoint family (schedules, groups, rules, action
// templates: API.md Part 2, added to the server by other work). It probes
// its collection first (lib/capabilities.js) and, when the server answers
// 404, says "not available on this server" instead of failing. Otherwise: a
// paged list with the spec's columns, row buttons, and a JSON editor to
// create and edit items.
//
// resourcePage({id, nav, path, title, intro, keyOf, columns: [[label, item => node]],
//   rowActions: [{action, label, method, path: item => p, confirm?: item => text, danger?,
//     enabled?: item => bool (a button that would only get a 409 is disabled)}],
//   create?: {label, template, send: body => [method, path]},
//   edit?: {label, bodyOf: item => body, send: (item, body) => [method, path]}})

import { h, append } from "../lib/dom.js";
import { api } from "../lib/api.js";
import { probe } from "../lib/capabilities.js";
import { confirmAction, errorBox, notice } from "../lib/dialogs.js";
import { pageOf } from "../lib/pager.js";
import { livePage } from "../lib/list.js";

function notAvailable(spec, err) {
  return h("div", { class: "not-available", id: "not-available" },
    h("h1", {}, spec.title),
    h("p", { class: "notice warn", role: "status" },
      `${spec.title}: not available on this server. `,
      `GET ${spec.path} answered ${err?.status || 404}${err?.message ? ` (${err.message})` : ""}; `,
      "this page works once the server has the endpoint."));
}

// A JSON editor in a dialog; resolves with the parsed body or null.
function editJson(title, value) {
  return new Promise((resolve) => {
    const area = h("textarea", { class: "mono json-editor", rows: "18", cols: "80", "aria-label": "JSON",
      spellcheck: "false" }, JSON.stringify(value, null, 2));
    const problem = h("p", { class: "error", hidden: true, role: "alert" });
    const dlg = h("dialog", { class: "editor" },
      h("h2", {}, title), area, problem,
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "secondary", on: { click: () => dlg.close("cancel") } }, "Cancel"),
        h("button", { type: "button", on: { click: () => {
          try {
            dlg.result = JSON.parse(area.value);
            dlg.close("save");
          } catch (e) {
            problem.hidden = false;
            problem.textContent = `Not valid JSON: ${e.message}`;
          }
        } } }, "Save")));
    dlg.addEventListener("close", () => { dlg.remove(); resolve(dlg.returnValue === "save" ? dlg.result : null); });
    document.body.append(dlg);
    dlg.showModal();
    area.focus();
  });
}

export function resourcePage(spec) {
  return {
    id: spec.id,
    nav: spec.nav,
    navPath: spec.path,
    optional: { probe: spec.path, kind: "collection" },
    route: new RegExp(`^${spec.path}/?$`),
    title: () => spec.title,
    async mount(view, ctx) {
      const found = await probe(spec.path, "collection");
      if (!ctx.isCurrent()) return;
      if (!found.available) {
        view.append(notAvailable(spec, found.error));
        return;
      }
      const { page, pageSize } = pageOf(ctx.query);
      const tbody = h("tbody", {});
      const status = h("div", { class: "list-status" });
      const pagerSlot = h("div", {});
      let load = async () => {}; // the list's, once shown (livePage)
      const send = async (what, method, path, body) => {
        try {
          await api(method, path, { body });
          notice(`${what}: done`);
          await load();
          return true;
        } catch (e) {
          status.replaceChildren(errorBox(e));
          return false;
        }
      };
      const rowButtons = (item) => [
        ...(spec.rowActions || []).map((a) => h("button", { type: "button", class: a.danger ? "danger" : "",
          "data-action": a.action, disabled: a.enabled ? !a.enabled(item) : false, on: { click: async () => {
            if (a.confirm && !await confirmAction({ title: `${a.label}?`, message: a.confirm(item), confirmLabel: a.label })) return;
            await send(`${a.label} ${spec.keyOf(item)}`, a.method, a.path(item));
          } } }, a.confirm ? a.label + "…" : a.label)),
        spec.edit ? h("button", { type: "button", "data-action": "edit", on: { click: async () => {
          const body = await editJson(`Edit ${spec.keyOf(item)}`, spec.edit.bodyOf(item));
          if (body !== null) await send(`edit ${spec.keyOf(item)}`, ...spec.edit.send(item, body), body);
        } } }, "Edit…") : null,
      ];
      const row = (item) => h("tr", {},
        spec.columns.map(([, fn]) => h("td", {}, fn(item))),
        h("td", { class: "row-actions" }, rowButtons(item)));
      append(view, [h("h1", {}, spec.title),
        spec.intro ? h("p", { class: "muted" }, spec.intro) : null,
        spec.create ? h("p", {}, h("button", { type: "button", "data-action": "create", on: { click: async () => {
          const body = await editJson(spec.create.label, spec.create.template);
          if (body !== null) await send(spec.create.label, ...spec.create.send(body), body);
        } } }, spec.create.label + "…")) : null,
        status,
        h("table", { class: "list", id: `${spec.id}-table` },
          h("thead", {}, h("tr", {}, [...spec.columns.map(([l]) => l), ""].map((c) => h("th", { scope: "col" }, c)))),
          tbody),
        pagerSlot]);
      load = await livePage(ctx, { path: spec.path, page, pageSize, tbody, keyOf: spec.keyOf, row, status,
        pagerSlot, empty: "None yet.",
        go: (p, s) => ctx.navigate(spec.path, { page: p || "", page_size: s === 50 ? "" : s }) });
    },
  };
}
