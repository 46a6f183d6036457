// One page of a list view, kept live: the rows (keyed, updated in place),
// a status line ("none" or the API's error) and the pager. Shared by the
// tasks, batches and resource pages.

import { h } from "./dom.js";
import { api } from "./api.js";
import { errorBox } from "./dialogs.js";
import { pager } from "./pager.js";
import { updateRows } from "./rows.js";

const REFRESH_MS = 5000;

// livePage(ctx, {path, query, page, pageSize, tbody, keyOf, row, status,
//   pagerSlot, empty, go(page, pageSize)}): loads the page once, then every
// REFRESH_MS while the view is current. Returns load, to reload after an action.
export async function livePage(ctx, { path, query = {}, page, pageSize, tbody, keyOf, row, status,
  pagerSlot, empty, go }) {
  const load = async () => {
    try {
      const got = await api("GET", path, { query: { ...query, page, page_size: pageSize } });
      if (!ctx.isCurrent()) return;
      const items = Array.isArray(got) ? got : (got?.items || []);
      updateRows(tbody, items, keyOf, row);
      status.replaceChildren(items.length ? "" : h("p", { class: "muted" }, empty));
      pagerSlot.replaceChildren(pager({ page, pageSize, count: items.length, go }));
    } catch (e) {
      if (ctx.isCurrent()) status.replaceChildren(errorBox(e));
      throw e;
    }
  };
  await load().catch(() => {});
  ctx.live(load, REFRESH_MS);
  return load;
}
