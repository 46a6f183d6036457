// Action templates (API.md Part 2, "Rule and action templates"): list,
// create, edit (PUT /action-templates/{name}), delete.

import { pre } from "../lib/dom.js";
import { resourcePage } from "./resource.js";

const enc = encodeURIComponent;
const bodyOf = ({ name, tasks_using, created_at, updated_at, ...action }) => action;

export default resourcePage({
  id: "action-templates",
  nav: "Action templates",
  path: "/action-templates",
  title: "Action templates",
  intro: "Named actions that tasks reference with {\"ref\": \"<name>\", \"params\": {…}}; resolved when the call is made.",
  keyOf: (a) => a.name,
  columns: [["Name", (a) => a.name], ["Action", (a) => pre(bodyOf(a))]],
  rowActions: [{ action: "delete", label: "Delete", method: "DELETE", path: (a) => `/action-templates/${enc(a.name)}`,
    danger: true, confirm: (a) => `Action template “${a.name}” is deleted.` }],
  create: {
    label: "New action template",
    template: { name: "notify-billing", kind: "Webhook", params: { url: "http://127.0.0.1:9000/notify", verb: "Post" } },
    send: ({ name, ...action }) => ["PUT", `/action-templates/${enc(name)}`, action],
  },
  edit: { label: "Edit", bodyOf, send: (a) => ["PUT", `/action-templates/${enc(a.name)}`] },
});
