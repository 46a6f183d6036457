// The API token of this tab: kept in sessionStorage (gone when the tab
// closes), sent as "Authorization: Bearer <token>" by lib/api.js.

const KEY = "taskrunner.apiToken";
const listeners = new Set();

export function getToken() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(token) {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
  for (const fn of listeners) fn(getToken());
}

export function onTokenChange(fn) {
  listeners.add(fn);
}
