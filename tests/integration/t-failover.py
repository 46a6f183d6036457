"""t-failover: the short database failover drill (tests/soak/failover.py, as
`make failover-test` runs it with longer load): a primary and a synchronous
streaming standby of their own (private dirs under /tmp, free loopback
ports), a stack of its own (var/failover-ctest) using them through a libpq
multi-host URI; kill -9 of the primary under load, promotion of the
standby: the same responders and workers serve again within seconds,
clients saw only 503s meanwhile, and no acknowledged task, status change or
webhook call is lost. The shared test stack is not touched."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

bin_dir = os.environ.get("TR_BIN") or os.path.join(REPO, "build-asan")
proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "soak", "failover.py"),
                       "--load-seconds", "6", "--clients", "2",
                       "--var", os.path.join(REPO, "var", "failover-ctest"), "--bin", bin_dir],
                      timeout=280)
if proc.returncode != 0:
    print("FAIL: t-failover: the drill found violations (above)", file=sys.stderr)
    sys.exit(1)
print("PASS: t-failover")
