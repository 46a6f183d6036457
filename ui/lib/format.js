// Times in the browser's time zone, with the UTC value on hover (title).

// Written as 2026-11-26 11:00:00 (the browser's zone), whatever the locale:
// unambiguous and sortable.
const local = new Intl.DateTimeFormat("sv-SE", {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

export function timeEl(iso) {
  if (!iso) {
    const s = document.createElement("span");
    s.className = "muted";
    s.textContent = "—";
    return s;
  }
  const el = document.createElement("time");
  el.dateTime = iso;
  el.title = `UTC: ${iso}`;
  el.textContent = formatLocal(iso);
  return el;
}

export function formatLocal(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : local.format(d);
}

export const zoneName = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

// The value of an <input type="datetime-local"> (the browser's zone) as RFC 3339 UTC.
export function localInputToUtc(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

export function utcToLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
