"""t-standard-webhooks: every webhook call carries the Standard Webhooks
headers (API.md, "Webhook header safety"; docs/security.md), verified with
the specification's own JavaScript library, `standardwebhooks` from npm.

The test installs the package into <build dir>/npm on its first run (npm
install, from the registry); without npm, or when the registry cannot be
reached, it is skipped (exit 77) and says why.

- start calls with a body and without, and an end call: webhook-id is the
  call's Idempotency-Key, webhook-timestamp is now, and the library verifies
  webhook-signature with the secret in the specification's form,
  "whsec_" + base64(the bytes of TASKRUNNER_WEBHOOK_SECRET);
- the same check by hand (Python's hmac and base64, docs/security.md);
- the signature covers who the call is: the same signature with another
  call's webhook-id, a changed body or another secret does not verify.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time

from trlib import check, create_map, env, new_kind, patch_task, step, task, wait_status, webhook
from workerlib import Hooks, run, worker_settings

PACKAGE = "standardwebhooks@1.1.1"

VERIFY_JS = r"""
const { Webhook } = require("standardwebhooks");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = input.calls.map((c) => {
  try {
    new Webhook(c.secret).verify(Buffer.from(c.body, "base64"), c.headers);
    return "verified";
  } catch (e) {
    return "refused: " + e.message;
  }
});
process.stdout.write(JSON.stringify(out));
"""


def npm_dir():
    """<build dir>/npm with the package installed, or exits 77 (skip) saying why."""
    where = os.path.join(env("TR_BIN"), "npm")
    if os.path.isdir(os.path.join(where, "node_modules", "standardwebhooks")):
        return where
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        print("SKIP: t-standard-webhooks: node and npm are needed (apt-get install nodejs npm)")
        sys.exit(77)
    os.makedirs(where, exist_ok=True)
    proc = subprocess.run([npm, "install", "--prefix", where, "--no-audit", "--no-fund",
                           PACKAGE], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        print(f"SKIP: t-standard-webhooks: npm install {PACKAGE} failed (registry "
              f"unreachable?): {proc.stderr.strip()[-400:]}")
        sys.exit(77)
    return where


def library_verify(where, cases):
    """[(secret, headers, body bytes)] -> the library's verdict on each."""
    data = json.dumps({"calls": [{"secret": s, "headers": h,
                                  "body": base64.b64encode(b).decode()} for s, h, b in cases]})
    proc = subprocess.run(["node", "-e", VERIFY_JS], input=data, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "NODE_PATH":
                                           os.path.join(where, "node_modules")})
    check(proc.returncode == 0, f"node failed: {proc.stderr[-500:]}")
    return json.loads(proc.stdout)


def by_hand(headers, body, secret):
    """The check of docs/security.md, with Python's standard library."""
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    want = base64.b64encode(mac).decode()
    return any(hmac.compare_digest(want, s.split(",", 1)[1])
               for s in headers["webhook-signature"].split(" ") if s.startswith("v1,"))


def part_verified_by_the_library(rx):
    where = npm_dir()
    secret = worker_settings().webhook_secret
    check(secret, "the stack's worker has no webhook secret")
    whsec = "whsec_" + base64.b64encode(secret.encode()).decode()
    step("calls with a body, without, and an end call")
    kind = new_kind("t-stdwh")
    with Hooks() as hooks:
        t, _ = create_map([
            task("body", kind=kind, on_start=webhook(hooks.url("/w/body"),
                                                     body={"x": 1, "s": "é \"q\""}),
                 on_success=[webhook(hooks.url("/w/end"), body={"done": True})]),
            task("empty", kind=kind, on_start=webhook(hooks.url("/w/empty"), verb="Get"))])
        calls = {p: hooks.wait_calls(f"/w/{p}", 1, timeout=15)[0] for p in ("body", "empty")}
        wait_status(t["body"]["id"], "Running", 10)
        patch_task(t["body"]["id"], {"status": "Success"})
        calls["end"] = hooks.wait_calls("/w/end", 1, timeout=15)[0]
        wait_status(t["empty"]["id"], "Running", 10)
        patch_task(t["empty"]["id"], {"status": "Success"})
    for name, call in calls.items():
        h = call.headers
        check(h.get("webhook-id") == h.get("idempotency-key"),
              f"{name}: webhook-id {h.get('webhook-id')} should be the Idempotency-Key "
              f"{h.get('idempotency-key')}")
        check(abs(int(h["webhook-timestamp"]) - time.time()) < 60,
              f"{name}: webhook-timestamp {h['webhook-timestamp']} is not now")
        check(h["webhook-signature"].startswith("v1,"), f"{name}: {h['webhook-signature']}")
    step("the standardwebhooks library verifies each with whsec_ + base64(secret)")
    names = list(calls)
    verdicts = library_verify(where, [(whsec, calls[n].headers, calls[n].body) for n in names])
    check(verdicts == ["verified"] * len(names), f"library verdicts {dict(zip(names, verdicts))}")
    for n in names:
        check(by_hand(calls[n].headers, calls[n].body, whsec), f"{n}: the check by hand failed")
    print(f"   verified: {', '.join(names)}")

    step("another call's webhook-id, a changed body, another secret: refused")
    body, end = calls["body"], calls["end"]
    other_secret = "whsec_" + base64.b64encode(b"another secret").decode()
    tampered = [(whsec, {**body.headers, "webhook-id": end.headers["webhook-id"]}, body.body),
                (whsec, body.headers, body.body + b" "),
                (other_secret, body.headers, body.body)]
    verdicts = library_verify(where, tampered)
    check(all(v.startswith("refused") for v in verdicts), f"tampered calls: {verdicts}")
    check(not any(by_hand(h, b, s) for s, h, b in tampered), "a tampered call verified by hand")


if __name__ == "__main__":
    run(part_verified_by_the_library)
