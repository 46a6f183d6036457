// The one way the UI talks to the JSON API (same origin as the page).
// Every answer that is not 2xx becomes an ApiError carrying the API's error
// body ({"error", "details": ["<path>: <why>"], "fields": [...]}); a 401
// also tells the shell to ask for a token.

import { getToken } from "./auth.js";

export class ApiError extends Error {
  constructor(status, body, method, path) {
    const msg = (body && body.error) || (status ? `HTTP ${status}` : "no answer");
    super(msg);
    this.status = status;
    this.body = body || {};
    this.method = method;
    this.path = path;
    this.details = Array.isArray(this.body.details) ? this.body.details : [];
  }
}

const unauthorizedListeners = new Set();
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
}

// Path plus query: values that are "", null or undefined are left out.
export function withQuery(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// api("GET", "/tasks", {query: {page: 0}}) -> the parsed JSON body (or null).
export async function api(method, path, { query, body, signal } = {}) {
  const url = withQuery(path, query);
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(url, {
      method, headers, signal, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { error: `the service did not answer (${e.message})` }, method, url);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = resp.ok ? text : { error: text.slice(0, 300) };
    }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data, method, url);
    if (resp.status === 401) for (const fn of unauthorizedListeners) fn(err);
    throw err;
  }
  return data;
}
