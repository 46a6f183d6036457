"""t-example-pipeline: the README's branching pipeline example
(examples/branching-pipeline.py) runs as written against the stack, in both
branches: export succeeds (upload reads its output through a placeholder,
cleanup is Skipped, report runs) and export fails (upload Skipped, cleanup
and report run, the conditional alert fires).
"""

import os
import re
import subprocess
import sys

from trlib import check, env, step
from workerlib import run

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                      "branching-pipeline.py")


def pipeline(*args):
    proc = subprocess.run([sys.executable, SCRIPT, "--url", env("TR_URL"), *args],
                          capture_output=True, text=True, timeout=120)
    check(proc.returncode == 0, f"the example failed ({proc.returncode}): {proc.stderr[-2000:]}")
    statuses = dict(re.findall(r"^(\w+): (\w+)", proc.stdout, re.M))
    return proc.stdout, statuses


def part_export_succeeds(rx):
    step("the example as written: export succeeds")
    out, st = pipeline()
    check(st == {"export": "Success", "upload": "Success", "cleanup": "Skipped",
                 "report": "Success"}, f"statuses: {st}\n{out}")
    check('/upload got {"rows":1234,"source":"s3:\\/\\/bucket\\/exports\\/2026-12-02.csv"}' in out,
          f"upload got the export's output: {out}")
    check("/alert" not in out and "/cleanup" not in out, "no alert, no cleanup call")


def part_export_fails(rx):
    step("the example with --fail-export")
    out, st = pipeline("--fail-export")
    check(st == {"export": "Failure", "upload": "Skipped", "cleanup": "Success",
                 "report": "Success"}, f"statuses: {st}\n{out}")
    check("/alert got" in out, "the conditional on_failure alert fired")
    check("response rule 2 says fail" in out, "the rule that failed export is named")


if __name__ == "__main__":
    run(part_export_succeeds, part_export_fails)
