"""t-cron-crosscheck: the fire times of cron schedules (sql/functions/cron.sql)
agree with an independent, widely used implementation, the npm package
`cron-parser`, over thousands of generated expressions, several time zones
and start times, DST transitions included.

The test installs the package into <build dir>/npm-cron on its first run (npm
install, from the registry); without npm, or when the registry cannot be
reached, it is skipped (exit 77) and says why.

- EXPRESSIONS generated expressions (5 and 6 fields: numbers, names, lists,
  ranges, steps, "*", both day fields restricted or not) x ZONES zones x
  STARTS start times (random ones and some just before the DST transitions
  of 2025 and 2026) x the next FIRES fire times: every pair compared, any
  difference fails the test (the first ones are printed);
- the contract's DST rules differ from cron-parser's own at the transitions
  (a skipped local time fires at the first minute after the gap; cron-parser
  moves it by the size of the gap), so a sequence is compared up to its
  first time within three hours of a transition of its zone; the DST rules
  are tested on their own in tests/sql/cron.sql.
"""

import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from trlib import check, env, step
from workerlib import run

PACKAGE = "cron-parser@5.10.6"
EXPRESSIONS = 1000
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
         "America/Santiago"]
STARTS = 2
FIRES = 5
NEAR_TRANSITION = timedelta(hours=3)

NEXT_JS = r"""
const { CronExpressionParser } = require("cron-parser");
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = cases.map((c) => {
  try {
    const it = CronExpressionParser.parse(c.expr, {currentDate: new Date(c.from), tz: c.tz});
    const times = [];
    for (let i = 0; i < c.n; i++) times.push(it.next().toISOString());
    return times;
  } catch (e) {
    return "error: " + e.message;
  }
});
process.stdout.write(JSON.stringify(out));
"""

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def npm_dir():
    """<build dir>/npm-cron with the package installed, or exits 77 (skip) saying why."""
    where = os.path.join(env("TR_BIN"), "npm-cron")
    if os.path.isdir(os.path.join(where, "node_modules", "cron-parser")):
        return where
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        print("SKIP: t-cron-crosscheck: node and npm are needed (apt-get install nodejs npm)")
        sys.exit(77)
    os.makedirs(where, exist_ok=True)
    proc = subprocess.run([npm, "install", "--prefix", where, "--no-audit", "--no-fund",
                           PACKAGE], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        print(f"SKIP: t-cron-crosscheck: npm install {PACKAGE} failed (registry "
              f"unreachable?): {proc.stderr.strip()[-400:]}")
        sys.exit(77)
    return where


def field(rng, lo, hi, names=None, sparse=False):
    """One random field of lo..hi (names: their spellings from lo)."""
    def value(a=lo, b=hi):
        v = rng.randint(a, b)
        if names and rng.random() < 0.4 and v - lo < len(names):
            return names[v - lo].upper() if rng.random() < 0.3 else names[v - lo], v
        return str(v), v

    def item():
        kind = rng.random()
        if kind < 0.35:
            return value()[0]
        if kind < 0.6:
            a_text, a = value(lo, hi - 1)
            b_text, _ = value(a, hi)
            return f"{a_text}-{b_text}"
        if kind < 0.75:
            return f"*/{rng.randint(1, max(1, (hi - lo) // 2))}"
        if kind < 0.9:
            a_text, a = value(lo, hi - 1)
            b_text, _ = value(a, hi)
            return f"{a_text}-{b_text}/{rng.randint(1, max(1, (hi - lo) // 3))}"
        return f"{rng.randint(lo, hi)}/{rng.randint(1, max(1, (hi - lo) // 2))}"

    if not sparse and rng.random() < 0.35:
        return "*"
    if rng.random() < 0.7:
        return item()
    # A list: distinct values (cron-parser refuses a value given twice).
    values = rng.sample(range(lo, hi + 1), rng.randint(2, min(4, hi - lo + 1)))
    return ",".join(names[v - lo] if names and rng.random() < 0.3 else str(v) for v in values)


def expression(rng):
    """A random expression of 5 or 6 fields that both implementations take."""
    six = rng.random() < 0.4
    parts = []
    if six:
        parts.append(field(rng, 0, 59))
    parts.append(field(rng, 0, 59))
    parts.append(field(rng, 0, 23))
    # The day fields: both "*", one restricted, or both (the "either" rule).
    choice = rng.random()
    dom = "*" if choice < 0.3 else field(rng, 1, 28 if rng.random() < 0.8 else 31, sparse=True)
    dow = "*" if 0.3 <= choice < 0.6 else field(rng, 0, 6, DAYS, sparse=True)
    if choice < 0.15:
        dow = "*"
    parts += [dom, field(rng, 1, 12, MONTHS), dow]
    if rng.random() < 0.05:
        parts[-1] = rng.choice(["7", "5-7", "3-7", "1-7/2"])  # 7 is Sunday too
    return " ".join(parts)


def transitions(tz, start, end):
    """Instants of the offset changes of zone tz between start and end (UTC)."""
    z = ZoneInfo(tz)
    out, t = [], start
    step_ = timedelta(hours=1)
    prev = t.astimezone(z).utcoffset()
    while t < end:
        t2 = t + step_
        off = t2.astimezone(z).utcoffset()
        if off != prev:
            out.append(t2)
        prev, t = off, t2
    return out


def near(t, trans):
    return any(abs(t - x) <= NEAR_TRANSITION for x in trans)


def sql_next_times(cases):
    """Our fire times for each case, computed by the database in one go."""
    lines = ["SET timezone = 'UTC';",
             "CREATE TEMP TABLE c (i integer, expr text, tz text, t timestamptz, n integer);",
             "COPY c FROM STDIN;"]
    for i, c in enumerate(cases):
        lines.append("\t".join([str(i), c["expr"], c["tz"], c["from"], str(c["n"])]))
    lines += ["\\.",
              "SELECT i, array_to_json(tr_cron_next_times(tr_cron_parse(expr), tz, t, n))"
              " FROM c ORDER BY i;"]
    cmd = shlex.split(env("TR_PSQL")) + ["-At", "-F", "|", "-f", "-"]
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=900)
    check(proc.returncode == 0, f"psql failed: {proc.stderr[-800:]}")
    out = {}
    for line in proc.stdout.splitlines():
        if "|" in line:
            i, times = line.split("|", 1)
            out[int(i)] = json.loads(times)
    return out


def iso(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main(_rx):
    where = npm_dir()
    rng = random.Random(12)
    lo, hi = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)
    trans = {tz: transitions(tz, lo, hi + timedelta(days=800)) for tz in ZONES}

    step(f"{EXPRESSIONS} expressions x {len(ZONES)} zones x {STARTS} start times x {FIRES} "
         "fire times")
    cases = []
    exprs = [expression(rng) for _ in range(EXPRESSIONS)]
    for e in exprs:
        for tz in ZONES:
            for k in range(STARTS):
                if k == 0 and trans[tz]:
                    # just before a transition of the zone
                    t = rng.choice(trans[tz]) - timedelta(minutes=rng.randint(1, 300))
                else:
                    t = lo + timedelta(seconds=rng.randint(0, int((hi - lo).total_seconds())))
                t = t.replace(microsecond=0)
                cases.append({"expr": e, "tz": tz, "from": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "n": FIRES})

    started = time.monotonic()
    proc = subprocess.run(["node", "-e", NEXT_JS], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=900,
                          env={**os.environ, "NODE_PATH": os.path.join(where, "node_modules")})
    check(proc.returncode == 0, f"node failed: {proc.stderr[-800:]}")
    theirs = json.loads(proc.stdout)
    print(f"cron-parser: {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    ours = sql_next_times(cases)
    print(f"database: {time.monotonic() - started:.1f} s")

    compared, skipped_dst, diffs, gave_up = 0, 0, [], []
    for i, c in enumerate(cases):
        t = theirs[i]
        if isinstance(t, str) and "loop limit exceeded" in t:
            gave_up.append(c)  # cron-parser's own search limit, not an answer
            continue
        check(not isinstance(t, str), f"cron-parser refused {c['expr']!r}: {t}")
        o = ours.get(i)
        check(o is not None, f"no fire times from the database for {c}")
        for a, b in zip(o, t):
            ta, tb = iso(a), iso(b)
            if near(ta, trans[c["tz"]]) or near(tb, trans[c["tz"]]):
                skipped_dst += 1
                break
            compared += 1
            if ta != tb:
                diffs.append(f"{c['expr']!r} in {c['tz']} from {c['from']}: ours {o}, "
                             f"cron-parser {t}")
                break
    print(f"compared {compared} fire times ({len(cases)} sequences); "
          f"{skipped_dst} sequences cut at a DST transition; cron-parser gave up (its loop "
          f"limit) on {len(gave_up)}")
    check(len(gave_up) <= len(cases) // 50, f"cron-parser gave up on too many: {gave_up[:5]}")
    check(not diffs, f"{len(diffs)} differences, the first ones:\n  " + "\n  ".join(diffs[:10]))
    check(compared >= len(cases) * FIRES * 0.9,
          f"too few comparisons ({compared}): the transitions cut too much")


if __name__ == "__main__":
    run(main)
