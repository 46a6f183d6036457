// Which optional endpoints this server has. Detected, never assumed: a
// route the server does not have answers 404 (nginx or the responder's "no
// such route"), one it has answers anything else. Probes are cached for the
// page's lifetime and never change anything:
//   - a collection: GET <path>?page_size=1 (404 = missing);
//   - an action taking only POST: GET on it answers 405 when the route
//     exists (method not allowed) and 404 when it does not.

import { api } from "./api.js";

const cache = new Map();

export function probe(path, kind = "collection") {
  const key = `${kind} ${path}`;
  if (!cache.has(key)) cache.set(key, run(path, kind));
  return cache.get(key);
}

async function run(path, kind) {
  try {
    await api("GET", path, { query: kind === "collection" ? { page_size: 1 } : {} });
    return { available: true };
  } catch (e) {
    if (e.status === 404) return { available: false, error: e };
    if (e.status === 405 && kind === "action") return { available: true };
    // 401/403/5xx: the route exists (or cannot be told now); the page shows the error
    return { available: e.status !== 0, error: e };
  }
}
