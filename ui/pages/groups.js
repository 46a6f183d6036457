// Groups (API.md Part 2, "Groups, batch controls and preemption"): totals
// by status; pause, resume, cancel.

import { resourcePage } from "./resource.js";
import { countsView } from "./batches.js";

const enc = encodeURIComponent;

export default resourcePage({
  id: "groups",
  nav: "Groups",
  path: "/groups",
  title: "Groups",
  keyOf: (g) => g.group,
  columns: [
    ["Group", (g) => g.group],
    ["Tasks", (g) => String(g.total ?? "")],
    ["Statuses", (g) => countsView(g.by_status)],
    ["Paused", (g) => (g.paused ? "paused" : "no")],
  ],
  rowActions: [
    { action: "pause", label: "Pause", method: "POST", path: (g) => `/groups/${enc(g.group)}/pause`,
      enabled: (g) => !g.paused },
    { action: "resume", label: "Resume", method: "POST", path: (g) => `/groups/${enc(g.group)}/resume`,
      enabled: (g) => g.paused },
    { action: "cancel", label: "Cancel group", method: "DELETE", path: (g) => `/groups/${enc(g.group)}`, danger: true,
      confirm: (g) => `Every task of group “${g.group}” that has not ended is Canceled.` },
  ],
});

