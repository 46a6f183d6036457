// Lays out a batch's DAG with ELK's "layered" algorithm (elkjs, in
// vendor/elkjs), in a Web Worker so the page stays responsive while it
// works. One worker for the page's lifetime, started on first use.
//
// Options chosen by measurement on 1,000-task batches in headless Chromium
// on a busy 2-core machine (README, "Web UI"): thoroughness 1 (fewer
// crossing-minimisation sweeps) and polyline edges for every graph; up to
// PRECISE_MAX nodes ELK's full layered layout (Brandes-Köpf placement).
// Above it, nodes keep their creation order within a layer (no crossing
// minimisation, which is most of the time on big DAGs: 2-3 s for 1,000
// dense tasks when the machine is loaded, 0.7-0.9 s without) and simple
// placement: batches are usually created in a meaningful order (a pipeline
// after another), which that order keeps readable.

import "../../vendor/elkjs/elk-api.js";

export const NODE_W = 180;
export const NODE_H = 34;
const PRECISE_MAX = 300;
const PRECISE = { "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF" };
const FAST = {
  "elk.layered.nodePlacement.strategy": "SIMPLE",
  "elk.layered.crossingMinimization.strategy": "NONE",
  "elk.separateConnectedComponents": "false",
};

let elk = null;
function engine() {
  if (!elk) {
    const workerUrl = new URL("../../vendor/elkjs/elk-worker.min.js", import.meta.url).href;
    elk = new window.ELK({ workerUrl });
  }
  return elk;
}

// Starts the worker now and lays out a small graph in it, so that the
// first real layout finds ELK parsed (~1.6 MB) and its layered code
// compiled: the shell calls it once the first page is shown.
let warm = null;
export function warmUp() {
  if (!warm) {
    const tasks = Array.from({ length: 12 }, (_, i) => ({ id: `w${i}` }));
    const links = tasks.slice(1).map((t, i) => ({ parent_id: `w${Math.floor(i / 3)}`, child_id: t.id }));
    warm = layoutDag({ tasks, links }).catch(() => null);
  }
  return warm;
}

// dag: {tasks: [{id, ...}], links: [{parent_id, child_id, requires_success}]}
// -> {width, height, nodes: Map(id -> {x, y, external}), edges: [{link, points: [{x, y}]}]}
// A parent outside the batch (linked by a dedupe strategy) is an "external" node.
export async function layoutDag(dag) {
  const inBatch = new Set(dag.tasks.map((t) => t.id));
  const external = new Set(dag.links.map((l) => l.parent_id).filter((id) => !inBatch.has(id)));
  const ids = [...inBatch, ...external];
  const graph = {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.edgeRouting": "POLYLINE",
      "elk.layered.thoroughness": "1",
      ...(ids.length > PRECISE_MAX ? FAST : PRECISE),
      "elk.spacing.nodeNode": "10",
      "elk.layered.spacing.nodeNodeBetweenLayers": "36",
      "elk.spacing.componentComponent": "24",
      "elk.padding": "[top=12,left=12,bottom=12,right=12]",
    },
    children: ids.map((id) => ({ id, width: NODE_W, height: NODE_H })),
    edges: dag.links.map((l, i) => ({ id: "e" + i, sources: [l.parent_id], targets: [l.child_id] })),
  };
  const out = await engine().layout(graph);
  const nodes = new Map(out.children.map((c) => [c.id, { x: c.x, y: c.y, external: external.has(c.id) }]));
  const edges = out.edges.map((e, i) => {
    const s = e.sections?.[0];
    const points = s ? [s.startPoint, ...(s.bendPoints || []), s.endPoint] : [];
    return { link: dag.links[i], points };
  });
  return { width: out.width, height: out.height, nodes, edges };
}
