"""t-multihost: several hosts on one PostgreSQL (tests/soak/multihost.py):
two front stacks of their own (nginx + 2 responders each, on free loopback
ports; var/multihost-ctest-a with the database and 2 workers,
var/multihost-ctest-b with 1 worker using A's database), clients spreading
every call over both for 30 s of the soak's mixed load; the soak's
invariants hold on the shared database, both hosts' /metrics agree with it,
and the workers of both hosts took work. The shared test stack is not
touched."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

bin_dir = os.environ.get("TR_BIN") or os.path.join(REPO, "build-asan")
proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "soak", "multihost.py"),
                       "--seconds", "30", "--var", os.path.join(REPO, "var", "multihost-ctest"),
                       "--bin", bin_dir], timeout=280)
if proc.returncode != 0:
    print("FAIL: t-multihost: an invariant failed (above)", file=sys.stderr)
    sys.exit(1)
print("PASS: t-multihost")
