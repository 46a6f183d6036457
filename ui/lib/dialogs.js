// Modal dialogs (<dialog>: keyboard focus stays inside, Escape cancels) and
// the error box that shows an API error with its details.

import { h } from "./dom.js";

// Asks before a destructive action; resolves true only on the confirm button.
export function confirmAction({ title, message, confirmLabel = "Confirm", extra = null }) {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, message),
      extra,
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "secondary", value: "cancel",
          on: { click: () => dlg.close("cancel") } }, "Cancel"),
        h("button", { type: "button", class: "danger", value: "confirm",
          on: { click: () => dlg.close("confirm") } }, confirmLabel)));
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(dlg.returnValue === "confirm");
    });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector("button.secondary").focus();
  });
}

// The error box: "<METHOD> <path>: <status> <error>" and each of `details`.
export function errorBox(err) {
  const status = err.status ? `${err.status} ` : "";
  const where = err.method ? `${err.method} ${err.path}: ` : "";
  let hint = null;
  if (err.status === 401) hint = "This server needs an API token: set one with “API token” at the top right.";
  if (err.status === 403) hint = "Your API token is not allowed to do this (a read token cannot change anything).";
  if (err.status === 404 && err.notAvailable) hint = "Not available on this server.";
  return h("div", { class: "error", role: "alert" },
    h("strong", {}, `${where}${status}${err.message}`),
    hint && h("p", {}, hint),
    err.details && err.details.length ? h("ul", {}, err.details.map((d) => h("li", {}, String(d)))) : null);
}

// Shows err in place of the element's content (for a view that failed to load).
export function showError(container, err) {
  container.replaceChildren(errorBox(err));
}

// A short note in the page's notice area (role=status: read out, not modal).
export function notice(text, kind = "ok") {
  const area = document.getElementById("notices");
  const el = h("div", { class: `notice ${kind}`, role: "status" }, text);
  area.append(el);
  setTimeout(() => el.remove(), 6000);
  return el;
}
