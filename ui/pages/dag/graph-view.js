// Draws a laid-out DAG as SVG: one linked, focusable box per task (status
// color, symbol and name), arrows from parent to child (dashed when the
// child does not require the parent's success). update() changes statuses
// in place: a refresh never redraws, so nothing flickers.

import { NODE_W, NODE_H } from "./layout.js";
import { statusClass, statusSymbol } from "../../lib/status.js";

const SVG = "http://www.w3.org/2000/svg";
const LABEL_MAX = 22;

function el(tag, attrs = {}, text = null) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

function shortLabel(s) {
  return s.length > LABEL_MAX ? s.slice(0, LABEL_MAX - 1) + "…" : s;
}

export class GraphView {
  constructor(layout, tasks) {
    this.nodes = new Map();
    this.scale = 1;
    this.layout = layout;
    const svg = el("svg", { class: "dag", role: "group", "aria-label": "the batch's tasks as a graph",
      viewBox: `0 0 ${layout.width} ${layout.height}` });
    const defs = el("defs");
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
    marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
    defs.append(marker);
    svg.append(defs);
    const edges = el("g", { class: "edges" });
    for (const e of layout.edges) {
      if (e.points.length < 2) continue;
      edges.append(el("polyline", { points: e.points.map((p) => `${p.x},${p.y}`).join(" "),
        class: e.link.requires_success ? "edge" : "edge optional", "marker-end": "url(#arrow)" }));
    }
    svg.append(edges);
    const nodesG = el("g", { class: "nodes" });
    const byId = new Map(tasks.map((t) => [t.id, t]));
    for (const [id, pos] of layout.nodes) {
      const t = byId.get(id);
      const a = el("a", { href: `#/tasks/${id}`, class: "node-link", "data-task-id": id });
      const g = el("g", { transform: `translate(${pos.x},${pos.y})` });
      const title = el("title");
      const rect = el("rect", { width: NODE_W, height: NODE_H, rx: "5" });
      const sym = el("text", { x: "8", y: "22", class: "sym" });
      const label = el("text", { x: "26", y: "22", class: "label" },
        t ? shortLabel(t.local_id || t.name) : "other batch: " + id.slice(0, 8));
      g.append(title, rect, sym, label);
      a.append(g);
      nodesG.append(a);
      this.nodes.set(id, { a, g, title, sym, t: t || null, status: null });
    }
    svg.append(nodesG);
    this.svg = svg;
    this.update(tasks);
  }

  // New statuses (and names) for the same tasks; returns how many changed.
  update(tasks) {
    let changed = 0;
    for (const t of tasks) {
      const n = this.nodes.get(t.id);
      if (!n || n.status === t.status) continue;
      n.status = t.status;
      n.t = t;
      n.g.setAttribute("class", `node ${statusClass(t.status)}`);
      n.sym.textContent = statusSymbol(t.status);
      n.title.textContent = `${t.local_id || ""} — ${t.name} (${t.kind}): ${t.status}`;
      n.a.setAttribute("aria-label", `${t.local_id || t.name}: ${t.status}`);
      n.a.dataset.status = t.status;
      changed++;
    }
    for (const n of this.nodes.values()) {
      if (!n.t && n.status === null) {
        n.status = "external";
        n.g.setAttribute("class", "node external");
        n.sym.textContent = "↗";
        n.title.textContent = "a task of another batch (linked by a dedupe strategy)";
        n.a.setAttribute("aria-label", "a task of another batch");
      }
    }
    return changed;
  }

  // Zoom: the drawing's size on screen (the viewBox stays the layout's).
  zoom(scale) {
    this.scale = Math.max(0.05, Math.min(4, scale));
    this.svg.setAttribute("width", String(Math.ceil(this.layout.width * this.scale)));
    this.svg.setAttribute("height", String(Math.ceil(this.layout.height * this.scale)));
  }

  // Fits the drawing's width to the box (a tall DAG then scrolls down;
  // fitting its height too would shrink a big one past reading).
  fit(box) {
    this.zoom(Math.min(1, (box.clientWidth - 4) / this.layout.width));
  }
}
