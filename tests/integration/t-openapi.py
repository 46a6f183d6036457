"""t-openapi: docs/openapi.json (served at GET /openapi.json) is true to the
service (API.md, "OpenAPI").

- GET /openapi.json answers the document of the source tree;
- every route of fcgi/router.c is in it, and every operation in it is a
  route (method and path both ways);
- it is a valid OpenAPI 3.1 document by a standard linter (`redocly lint`,
  @redocly/cli, recommended rules);
- every API call the integration tests made (trlib records them in
  TR_API_RECORD_DIR; ctest runs this test after all the others) and this
  test's own calls conform to it: each answer's JSON to its status's schema,
  each accepted request body to the operation's schema (openapi-check.js,
  with ajv and ajv-formats).

The npm packages are installed into <build dir>/npm-openapi on the first
run; without node and npm, or when the registry cannot be reached, the test
is skipped (exit 77) and says why.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import uuid

from trlib import (api, check, check_error, create, env, expect, run, short, step, task)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DOC = os.path.join(ROOT, "docs", "openapi.json")
PACKAGES = ["ajv@8.20.0", "ajv-formats@3.0.1", "@redocly/cli@2.77.0"]
MARK = ".installed-" + "-".join(p.replace("/", "_") for p in PACKAGES)


def npm_dir():
    """<build dir>/npm-openapi with the packages, or exits 77 saying why."""
    where = os.path.join(env("TR_BIN"), "npm-openapi")
    if os.path.exists(os.path.join(where, MARK)):
        return where
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        print("SKIP: t-openapi: node and npm are needed (scripts/deps test installs them)")
        sys.exit(77)
    os.makedirs(where, exist_ok=True)
    proc = subprocess.run([npm, "install", "--prefix", where, "--no-audit", "--no-fund",
                           *PACKAGES], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(f"SKIP: t-openapi: npm install failed (no registry?): {proc.stderr[-500:]}")
        sys.exit(77)
    open(os.path.join(where, MARK), "w").close()
    return where


def router_routes():
    """(METHOD, path) of every route of fcgi/router.c, parameters as {id} (a
    schedule's id or name as {key}, a group's name as {group})."""
    text = open(os.path.join(ROOT, "fcgi", "router.c")).read()
    table = text[text.index("static const struct route routes[]"):]
    table = table[:table.index("};")]
    routes = set()
    for method, pattern in re.findall(r'\{"([A-Z]+)", "(/[^"]*)"', table):
        routes.add((method, re.sub(r":(key|group)\b", r"{\1}",
                                   re.sub(r":(id|n)\b", "{id}", pattern))))
    check(len(routes) > 20, f"could not read the route table of fcgi/router.c: {routes}")
    return routes


def doc_operations(doc):
    ops = set()
    for path, item in doc["paths"].items():
        for method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
            if method in item:
                ops.add((method.upper(), path))
    return ops


def step_served_and_routed(rx):
    step("GET /openapi.json is the document of the source tree, OpenAPI 3.1")
    doc = json.load(open(DOC))
    served = expect(api("GET", "/openapi.json"), 200, "GET /openapi.json")
    check(served == doc, "GET /openapi.json differs from docs/openapi.json (rebuild?)")
    check(doc["openapi"].startswith("3.1."), f"openapi version {doc['openapi']}")

    step("every route of the router is documented, every documented operation is routed")
    routes, ops = router_routes(), doc_operations(doc)
    check(routes - ops == set(), f"routes missing from docs/openapi.json: {sorted(routes - ops)}")
    check(ops - routes == set(), f"documented but not routed: {sorted(ops - routes)}")


def step_lint(rx):
    step("redocly lint (recommended rules) finds no error")
    where = npm_dir()
    proc = subprocess.run([os.path.join(where, "node_modules", ".bin", "redocly"), "lint",
                           "--format", "stylish", DOC], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "REDOCLY_TELEMETRY": "off",
                                            "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"})
    check(proc.returncode == 0, f"redocly lint failed:\n{proc.stdout[-3000:]}{proc.stderr[-1500:]}")


def step_own_calls(rx):
    step("a few calls of every kind, recorded like the other tests' calls")
    made, bid = create([task("a", kind="t-openapi"),
                        task("b", kind="t-openapi", dependencies=[{"id": "a",
                                                                   "requires_success": True}])])
    api("GET", f"/tasks/{made[1]['id']}/blockers")
    api("GET", f"/tasks/{made[0]['id']}/history")
    api("GET", f"/batches/{bid}")
    api("GET", f"/batches/{bid}/dag")
    api("GET", "/batches?kind=t-openapi")
    api("GET", "/dead-letters")
    api("GET", "/health")
    api("GET", "/ready")
    api("HEAD", f"/tasks/{made[0]['id']}")
    check_error(api("GET", f"/batches/{uuid.uuid4()}"), 404, "unknown batch")
    check_error(api("POST", "/batches"), 405, "POST /batches")
    api("DELETE", f"/batches/{bid}")


def step_recorded_calls(rx):
    step("every recorded call conforms to the document (ajv)")
    where = npm_dir()
    records = sorted(glob.glob(os.path.join(env("TR_API_RECORD_DIR"), "*.jsonl")))
    check(records, "no recorded calls (TR_API_RECORD_DIR)")
    proc = subprocess.run(["node", os.path.join(HERE, "openapi-check.js"), DOC, *records],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NODE_PATH": os.path.join(where, "node_modules")})
    print(proc.stdout[-6000:])
    check(proc.returncode == 0, f"calls that do not conform:\n{proc.stdout[-4000:]}"
          f"{proc.stderr[-2000:]}")
    count = int(re.search(r"(\d+) calls", proc.stdout).group(1))
    check(count > 50, f"only {count} calls were recorded")


if __name__ == "__main__":
    run(step_served_and_routed, step_lint, step_own_calls, step_recorded_calls)
