"""t-soak: the short soak (tests/soak/soak.py, as `make soak` runs it for 10
minutes): 75 s of mixed load under chaos (kill -9 of responders, workers and
nginx workers, PostgreSQL restarts fast and immediate, a webhook target's
backlog) against a stack of its own (var/soak-ctest, free loopback ports,
this build's binaries), then the invariant checker: every accepted task
stored once, every task ended, no concurrency rule exceeded (sampled and
from the history), every webhook call received with one Idempotency-Key,
retries and schedule slots exactly once, /metrics equal to the database's
counts. The shared test stack is not touched."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

bin_dir = os.environ.get("TR_BIN") or os.path.join(REPO, "build-asan")
proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "soak", "soak.py"),
                       "--minutes", os.environ.get("TR_SOAK_TEST_MINUTES", "1.25"),
                       "--var", os.path.join(REPO, "var", "soak-ctest"), "--bin", bin_dir,
                       "--results", os.path.join(REPO, "var", "soak-ctest-results.json")],
                      timeout=280)
if proc.returncode != 0:
    print("FAIL: t-soak: the soak found violations (above)", file=sys.stderr)
    sys.exit(1)
print("PASS: t-soak")
