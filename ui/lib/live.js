// Live refresh: one request at a time per view, the next one `intervalMs`
// after the previous answer, none while the tab is hidden. The router stops
// it when the view goes away.

export function startLive(refresh, intervalMs) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try {
        await refresh();
      } catch (e) {
        // the view shows its own error; the next tick tries again
      }
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  timer = setTimeout(tick, intervalMs);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
