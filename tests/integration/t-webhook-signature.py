"""t-webhook-signature: every webhook the stack's worker sends is signed
(API.md "Webhooks sent by the worker"; docs/security.md).

scripts/stack generated a secret at the first start ($TR_VAR/secrets/
webhook_secret, mode 600) and gave it to the worker. A receiver holding
that secret checks X-Taskrunner-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256 of "<t>.<raw body>"> with Python's hmac (the snippet of
docs/security.md), for calls with a body and without, on start and end; a
changed body or another secret does not verify.
"""

import os
import stat

from seclib import stack_secret, verify_signature
from trlib import Failed, check, create_map, new_kind, patch_task, step, task, wait_status, webhook
from workerlib import Hooks, run, worker_settings


def the_secret():
    """The stack worker's webhook secret: the generated one, unless the caller
    of the test stack set TASKRUNNER_WEBHOOK_SECRET."""
    return worker_settings().webhook_secret


def part_secret_file(rx):
    step("the stack generated the secret: secrets/webhook_secret, mode 600, 64 hex digits, "
         "given to the worker")
    if os.environ.get("TASKRUNNER_WEBHOOK_SECRET"):
        print("   (TASKRUNNER_WEBHOOK_SECRET set by the caller: nothing generated to check)")
        return
    path = os.path.join(os.environ["TR_SECRETS"], "webhook_secret")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    check(mode == 0o600, f"{path} should be mode 600, is {oct(mode)}")
    secret = stack_secret("webhook_secret")
    check(len(secret) == 64 and all(c in "0123456789abcdef" for c in secret),
          f"the generated secret should be 64 hex digits, got {len(secret)} characters")
    check(the_secret() == secret, "the worker should have the generated secret")


def part_signed_calls(rx):
    step("on_start with and without a body and on_success carry a valid, fresh signature")
    secret = the_secret()
    check(secret, "the stack's worker has no webhook secret")
    kind = new_kind("t-webhook-sig")
    with Hooks() as hooks:
        t, _ = create_map([
            task("body", kind=kind, on_start=webhook(hooks.url("/s/body"),
                                                     body={"x": 1, "s": "é \"q\""}),
                 on_success=[webhook(hooks.url("/s/end"), body={"done": True})]),
            task("empty", kind=kind, on_start=webhook(hooks.url("/s/empty"), verb="Get"))])
        calls = {p: hooks.wait_calls(f"/s/{p}", 1, timeout=15)[0] for p in ("body", "empty")}
        wait_status(t["body"]["id"], "Running", 10)
        patch_task(t["body"]["id"], {"status": "Success"})
        calls["end"] = hooks.wait_calls("/s/end", 1, timeout=15)[0]
        wait_status(t["empty"]["id"], "Running", 10)
        patch_task(t["empty"]["id"], {"status": "Success"})
        for name, call in calls.items():
            header = call.headers.get("x-taskrunner-signature")
            ts = verify_signature(header, call.body, secret)
            print(f"   {name}: {call.method}, {len(call.body)} body bytes, t={ts}: verified")
        check(calls["empty"].body == b"", "the Get call should have no body")

        step("a changed body or another secret does not verify")
        call = calls["body"]
        header = call.headers["x-taskrunner-signature"]
        for body, key, what in [(call.body + b" ", secret, "a changed body"),
                                (call.body, secret[:-1] + "0" if secret[-1] != "0"
                                 else secret[:-1] + "1", "another secret")]:
            try:
                verify_signature(header, body, key)
            except Failed:
                continue
            raise Failed(f"the signature verified with {what}")


if __name__ == "__main__":
    run(part_secret_file, part_signed_calls)
