// The shell: navigation, the API token box and a hash router
// (#/tasks?status=Running, #/batches/<id>, ...). Each page module exports
//   {id, nav?: "Label", optional?: {probe: "/path"}, route: RegExp,
//    title(params), mount(view, ctx) -> cleanup function (or nothing)}
// and ctx gives it the route's params and query, navigate() and live().

import { h, clear, append } from "./lib/dom.js";
import { getToken, setToken, onTokenChange } from "./lib/auth.js";
import { onUnauthorized } from "./lib/api.js";
import { startLive } from "./lib/live.js";
import { probe } from "./lib/capabilities.js";
import { showError } from "./lib/dialogs.js";
import { PAGES } from "./pages/registry.js";
import { zoneName } from "./lib/format.js";

const main = document.getElementById("main");
let cleanups = [];
let mountSeq = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/tasks";
  const [path, qs = ""] = raw.split("?");
  return { path, query: new URLSearchParams(qs) };
}

export function navigate(path, query) {
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v !== null && v !== undefined)).toString() : "";
  const target = "#" + path + (qs ? "?" + qs : "");
  if (location.hash === target) render();
  else location.hash = target;
}

function stopView() {
  for (const fn of cleanups) {
    try { fn(); } catch { /* a view's cleanup must not stop the next view */ }
  }
  cleanups = [];
}

async function render() {
  stopView();
  const seq = ++mountSeq;
  const { path, query } = parseHash();
  let page = null;
  let match = null;
  for (const p of PAGES) {
    match = p.route.exec(path);
    if (match) { page = p; break; }
  }
  highlightNav(page);
  clear(main);
  if (!page) {
    main.append(h("h1", {}, "Not found"), h("p", {}, `No page at ${path}. `, h("a", { href: "#/tasks" }, "Tasks")));
    return;
  }
  const params = match.groups || {};
  document.title = `${page.title(params)} · Task Runner`;
  const ctx = {
    params, query, navigate,
    // Registers a refresh for this view (stopped when it goes away).
    live: (fn, ms) => cleanups.push(startLive(fn, ms)),
    onLeave: (fn) => cleanups.push(fn),
    isCurrent: () => seq === mountSeq,
  };
  try {
    const cleanup = await page.mount(main, ctx);
    if (typeof cleanup === "function") {
      if (seq === mountSeq) cleanups.push(cleanup);
      else cleanup();
    }
  } catch (e) {
    if (seq === mountSeq) showError(main, e);
  }
}

function buildNav() {
  const nav = document.getElementById("nav");
  for (const p of PAGES.filter((x) => x.nav)) {
    const a = h("a", { href: "#" + p.navPath, "data-page": p.id }, p.nav);
    nav.append(a);
    if (p.optional) {
      probe(p.optional.probe, p.optional.kind).then((r) => {
        if (!r.available) {
          a.classList.add("unavailable");
          a.title = "not available on this server";
          a.append(h("span", { class: "tag" }, "n/a"));
        }
      });
    }
  }
}

function highlightNav(page) {
  for (const a of document.querySelectorAll("#nav a")) {
    const on = page && (a.dataset.page === page.id || a.dataset.page === page.navOf);
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// The token box: "no token" / "token set" with a form to set or forget it.
function renderTokenArea(reason) {
  const area = document.getElementById("token-area");
  clear(area);
  const has = !!getToken();
  const input = h("input", { type: "password", id: "token-input", autocomplete: "off",
    placeholder: "API token", "aria-label": "API token" });
  const form = h("form", { class: "token-form", hidden: !reason,
    on: { submit: (e) => { e.preventDefault(); setToken(input.value.trim()); } } },
    reason ? h("p", { class: "token-reason", role: "alert" }, reason) : null,
    input, h("button", { type: "submit" }, "Use token"));
  append(area, [
    h("span", { class: "token-state" }, has ? "API token: set" : "API token: none"),
    h("button", { type: "button", class: "secondary", id: "token-toggle",
      on: { click: () => { form.hidden = !form.hidden; if (!form.hidden) input.focus(); } } },
      has ? "Change token" : "Set token"),
    has ? h("button", { type: "button", class: "secondary", on: { click: () => setToken("") } }, "Forget token") : null,
    form]);
  if (reason) input.focus();
}

onTokenChange(() => { renderTokenArea(); render(); });
onUnauthorized((err) => {
  renderTokenArea(getToken()
    ? `401: the server refused this token (${err.message}). Enter another one.`
    : `401: this server needs an API token (${err.message}). It is kept for this tab only.`);
});

document.getElementById("zone-note").textContent = `Times in ${zoneName} (hover for UTC).`;
window.addEventListener("hashchange", render);
buildNav();
renderTokenArea();
render();
// The DAG layout engine starts in its worker once the first page is up, so
// that a batch page draws without waiting for it (pages/dag/layout.js).
setTimeout(() => import("./pages/dag/layout.js").then((m) => m.warmUp()), 300);
