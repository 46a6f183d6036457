// Rule templates (API.md Part 2, "Rule and action templates"): list, create,
// edit (PUT /rules/{name}), delete.

import { pre } from "../lib/dom.js";
import { resourcePage } from "./resource.js";

const enc = encodeURIComponent;
const bodyOf = ({ name, tasks_using, created_at, updated_at, ...rule }) => rule;

export default resourcePage({
  id: "rules",
  nav: "Rules",
  path: "/rules",
  title: "Rules",
  intro: "Named concurrency rules that tasks reference with {\"ref\": \"<name>\"}; a change applies to every task that has not started.",
  keyOf: (r) => r.name,
  columns: [["Name", (r) => r.name], ["Rule", (r) => pre(bodyOf(r))]],
  rowActions: [{ action: "delete", label: "Delete", method: "DELETE", path: (r) => `/rules/${enc(r.name)}`, danger: true,
    confirm: (r) => `Rule “${r.name}” is deleted (refused while a task that has not ended uses it).` }],
  create: {
    label: "New rule",
    template: { name: "ingest-per-tenant", type: "Concurrency", max_concurrency: 3,
      matcher: { kind: "ingest", status: "Running", fields: ["tenant_id"] } },
    send: ({ name, ...rule }) => ["PUT", `/rules/${enc(name)}`, rule],
  },
  edit: { label: "Edit", bodyOf, send: (r) => ["PUT", `/rules/${enc(r.name)}`] },
});
