// Keyed table rows: a refresh changes only the rows whose data changed, in
// place, so nothing flickers and focus on an unchanged row stays.

export function updateRows(tbody, items, keyOf, renderRow) {
  const old = new Map();
  for (const tr of tbody.children) old.set(tr.dataset.key, tr);
  const rows = items.map((item) => {
    const key = String(keyOf(item));
    const sig = JSON.stringify(item);
    const prev = old.get(key);
    if (prev && prev.dataset.sig === sig) return prev;
    const tr = renderRow(item);
    tr.dataset.key = key;
    tr.dataset.sig = sig;
    if (prev && prev.contains(document.activeElement)) {
      // keep the focus on the same control of the new row when it has one
      const idx = [...prev.querySelectorAll("a,button")].indexOf(document.activeElement);
      queueMicrotask(() => tr.querySelectorAll("a,button")[idx]?.focus());
    }
    return tr;
  });
  rows.forEach((tr, i) => {
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  while (tbody.children.length > rows.length) tbody.lastElementChild.remove();
}
