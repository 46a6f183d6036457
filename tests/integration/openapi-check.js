// openapi-check: validates recorded API calls against docs/openapi.json with
// ajv (JSON Schema 2020-12, the dialect of OpenAPI 3.1) and ajv-formats.
//
//   node openapi-check.js DOC RECORD.jsonl...     (NODE_PATH: the npm modules)
//
// Each record is {method, path, status, request, content_type, response}
// (tests/integration/trlib.py writes them). For each call: the operation of
// its method and path, the documented answer of its status, whose schema the
// JSON answer must satisfy; a 2xx call's JSON request body must satisfy the
// operation's requestBody schema. A path or method the document does not
// have must have answered an Error (404, 405). Statuses only nginx produces
// for any path (a malformed request, 413, 414, 429, 502-504) are read as
// Error. Prints a summary; exits 1 when any call does not conform.
"use strict";
const fs = require("fs");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const [docPath, ...records] = process.argv.slice(2);
const doc = JSON.parse(fs.readFileSync(docPath, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, "openapi");

const NGINX_STATUSES = new Set([400, 408, 411, 413, 414, 429, 494, 500, 502, 503, 504, 505]);
const METHODS = ["get", "put", "post", "delete", "patch"];

// Path templates, the ones with fewer parameters first (literal wins).
const templates = Object.keys(doc.paths)
  .map((p) => ({
    path: p,
    params: (p.match(/\{/g) || []).length,
    re: new RegExp("^" + p.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+") + "$"),
  }))
  .sort((a, b) => a.params - b.params);

const pointer = (...parts) =>
  "openapi#/" + parts.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
const validators = new Map();
function validatorAt(ptr) {
  if (!validators.has(ptr)) validators.set(ptr, ajv.compile({ $ref: ptr }));
  return validators.get(ptr);
}
const ERROR_PTR = pointer("components", "schemas", "Error");

function resolve(obj) {
  // A $ref to components/responses: [the object, its pointer]
  if (obj && obj.$ref) {
    const parts = obj.$ref.replace(/^#\//, "").split("/");
    let o = doc;
    for (const p of parts) o = o[p.replace(/~1/g, "/").replace(/~0/g, "~")];
    return [o, "openapi#/" + obj.$ref.replace(/^#\//, "")];
  }
  return [obj, null];
}

const failures = new Map(); // message -> count
const checked = new Map(); // "METHOD path status" -> count
function fail(rec, what) {
  const key = `${rec.method} ${rec.tpl || rec.path} -> ${rec.status}: ${what}`;
  failures.set(key, (failures.get(key) || 0) + 1);
}
function check(validate, value, rec, what) {
  if (!validate(value)) {
    const errs = validate.errors.slice(0, 3).map((e) => `${e.instancePath || "/"} ${e.message}`);
    fail(rec, `${what} does not match: ${errs.join("; ")}: ${JSON.stringify(value).slice(0, 300)}`);
  }
}

let total = 0;
for (const file of records) {
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const rec = JSON.parse(line);
    total++;
    let path = rec.path.split("?")[0];
    if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
    const method = rec.method === "HEAD" ? "get" : rec.method.toLowerCase();
    const tpl = templates.find((t) => t.re.test(path));
    const op = tpl && METHODS.includes(method) ? doc.paths[tpl.path][method] : undefined;
    rec.tpl = tpl ? tpl.path : "(unknown path)";
    const key = `${rec.method} ${rec.tpl} ${rec.status}`;
    checked.set(key, (checked.get(key) || 0) + 1);
    const body = rec.response;
    if (body === "<not JSON>") {
      fail(rec, "the answer says application/json but is not JSON");
      continue;
    }
    if (!op) {
      if (![404, 405].includes(rec.status) && !NGINX_STATUSES.has(rec.status))
        fail(rec, "a call the document does not have was answered " + rec.status);
      if (body !== null) check(validatorAt(ERROR_PTR), body, rec, "the error");
      continue;
    }
    const opPtr = ["paths", tpl.path, method];
    let [resp, respPtr] = resolve(op.responses[String(rec.status)]);
    if (!resp) {
      if (NGINX_STATUSES.has(rec.status) || rec.status === 405) {
        if (body !== null) check(validatorAt(ERROR_PTR), body, rec, "the error");
      } else {
        fail(rec, "undocumented status");
      }
      continue;
    }
    if (body !== null && rec.method !== "HEAD") {
      const content = resp.content && resp.content[rec.content_type];
      if (!content) fail(rec, `undocumented answer content ${rec.content_type}`);
      else {
        const ptr = respPtr
          ? `${respPtr}/content/${rec.content_type.replace(/\//g, "~1")}/schema`
          : pointer(...opPtr, "responses", String(rec.status), "content", rec.content_type, "schema");
        check(validatorAt(ptr), body, rec, "the answer");
      }
    }
    if (rec.status >= 200 && rec.status < 300 && rec.request !== null) {
      if (!op.requestBody) fail(rec, "a body was sent to an operation that takes none");
      else
        check(validatorAt(pointer(...opPtr, "requestBody", "content", "application/json", "schema")),
              rec.request, rec, "the request body");
    }
  }
}

console.log(`openapi-check: ${total} calls, ${checked.size} distinct (method, path, status)`);
for (const [k, n] of [...checked.entries()].sort()) console.log(`  ${n}\t${k}`);
if (failures.size) {
  console.log(`openapi-check: ${failures.size} kinds of nonconforming calls:`);
  for (const [k, n] of failures) console.log(`  ${n}x ${k}`);
  process.exit(1);
}
console.log("openapi-check: every call conforms");
