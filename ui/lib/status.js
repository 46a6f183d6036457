// Task statuses: each has a color, a symbol and its name, so that color is
// never the only sign (the name is always written).

export const STATUSES = ["Waiting", "Pending", "Claimed", "Running", "Success", "Failure",
  "Canceled", "Paused", "Skipped"];
export const TERMINAL = new Set(["Success", "Failure", "Canceled", "Skipped"]);

const SYMBOLS = {
  Waiting: "◷", Pending: "○", Claimed: "◔", Running: "▶", Success: "✓", Failure: "✗",
  Canceled: "⊘", Paused: "‖", Skipped: "↷",
};

export function statusSymbol(status) {
  return SYMBOLS[status] || "?";
}

export function statusClass(status) {
  return "st-" + String(status || "unknown").toLowerCase();
}

export function statusBadge(status) {
  const el = document.createElement("span");
  updateStatusBadge(el, status);
  return el;
}

export function updateStatusBadge(el, status) {
  el.className = `status ${statusClass(status)}`;
  el.textContent = `${statusSymbol(status)} ${status}`;
  el.dataset.status = status;
}
