// Schedules (API.md Part 2, "Scheduled start and cron schedules"): next fire
// times, create from JSON, edit, pause, resume, trigger, delete.

import { h, link, dash } from "../lib/dom.js";
import { timeEl } from "../lib/format.js";
import { resourcePage } from "./resource.js";

const enc = encodeURIComponent;
const EDITABLE = ["cron", "timezone", "overlap", "catchup", "paused", "tasks"];

export default resourcePage({
  id: "schedules",
  nav: "Schedules",
  path: "/schedules",
  title: "Schedules",
  intro: "Each schedule creates a batch on its cron schedule. Times are in your time zone (UTC on hover).",
  keyOf: (s) => s.name || s.id,
  columns: [
    ["Name", (s) => s.name],
    ["Cron", (s) => h("code", {}, s.cron)],
    ["Time zone", (s) => s.timezone || "UTC"],
    ["Paused", (s) => (s.paused ? "paused" : "no")],
    ["Next fire times", (s) => h("ul", { class: "compact" }, (s.next_fire_times || []).slice(0, 3).map((t) => h("li", {}, timeEl(t))))],
    ["Last fired", (s) => timeEl(s.last_fired_at)],
    ["Last batch", (s) => (s.last_batch_id ? link(`/batches/${s.last_batch_id}`, s.last_batch_id.slice(0, 8), { class: "mono" }) : dash())],
  ],
  rowActions: [
    { action: "pause", label: "Pause", method: "POST", path: (s) => `/schedules/${enc(s.name)}/pause`,
      enabled: (s) => !s.paused },
    { action: "resume", label: "Resume", method: "POST", path: (s) => `/schedules/${enc(s.name)}/resume`,
      enabled: (s) => s.paused },
    { action: "trigger", label: "Trigger now", method: "POST", path: (s) => `/schedules/${enc(s.name)}/trigger`,
      confirm: (s) => `Schedule “${s.name}” fires once now: a new batch is created.` },
    { action: "delete", label: "Delete", method: "DELETE", path: (s) => `/schedules/${enc(s.name)}`, danger: true,
      confirm: (s) => `Schedule “${s.name}” is deleted; batches it made stay.` },
  ],
  create: {
    label: "New schedule",
    template: { name: "nightly-report", cron: "0 2 * * *", timezone: "UTC", overlap: "skip", catchup: "latest",
      paused: false, tasks: [{ id: "report", name: "Report", kind: "report",
        on_start: { kind: "Webhook", params: { url: "http://127.0.0.1:9000/run", verb: "Post" } } }] },
    send: () => ["POST", "/schedules"],
  },
  edit: {
    label: "Edit",
    bodyOf: (s) => Object.fromEntries(EDITABLE.filter((k) => k in s).map((k) => [k, s[k]])),
    send: (s) => ["PATCH", `/schedules/${enc(s.name)}`],
  },
});
