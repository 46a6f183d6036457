"""t-ratelimit: nginx's rate limits (per client address and per X-Requester;
JSON 429 with Retry-After) stop a runaway client and leave a well-behaved
one alone (docs/security.md, "Rate limits").

The test stack's limits are set high for the load tests (5000 r/s, burst
10000), and a limit is per nginx, so this test starts a side stack: a second
nginx rendered from the very template (nginx/nginx.conf.in) with 10 r/s and
a burst of 20, in front of the stack's own responders. Clients send from
different loopback addresses (127.0.0.2 ...) to tell addresses apart.

- a burst of 80 requests from one address, as fast as it can: beyond the
  burst and the rate, 429 JSON with Retry-After; never more accepted than
  the limit allows;
- meanwhile a client on another address at 5 r/s gets every answer 200;
- one X-Requester spread over two addresses (each under the per-address
  burst) is limited as one client.
"""

import threading
import time
import uuid

from seclib import SideStack, check_json_error
from trlib import check, step
from workerlib import run

RATE, BURST = 10, 20


def blast(side, n, source, headers=None, threads=4):
    """n GET /health as fast as possible from source; returns ([codes], seconds, [429 answers])."""
    codes, limited = [], []
    lock = threading.Lock()
    left = [n]

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            resp = side.api("GET", "/health", headers=headers, source=source)
            with lock:
                codes.append(resp[0])
                if resp[0] == 429:
                    limited.append(resp)
    started = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return codes, time.monotonic() - started, limited


def check_limited(codes, seconds, limited, allowed_extra, what):
    ok, n429 = codes.count(200), codes.count(429)
    most = 1 + BURST + RATE * seconds + allowed_extra
    print(f"   {what}: {len(codes)} requests in {seconds:.2f}s: {ok} x 200, {n429} x 429 "
          f"(at most {most:.0f} may pass)")
    check(set(codes) <= {200, 429}, f"{what}: unexpected answers {sorted(set(codes))}")
    check(n429 > 0, f"{what}: nothing was limited")
    check(ok <= most, f"{what}: {ok} passed, more than the limit allows ({most:.0f})")
    for resp in limited[:5]:
        check_json_error(resp, 429, f"{what}: a 429")
        check(resp[1].get("retry-after", "").isdigit(),
              f"{what}: a 429 needs Retry-After, got {resp[1].get('retry-after')!r}")


def part_burst_and_normal(rx):
    step(f"a side nginx from the same template, {RATE} r/s burst {BURST}: a burst from "
         "127.0.0.2 is limited while 127.0.0.3 at half the rate is not")
    with SideStack("ratelimit", rate=RATE, burst=BURST) as side:
        time.sleep(BURST / RATE)  # the readiness probes spent a little of the burst
        normal = []

        def steady():
            for _ in range(12):
                normal.append(side.api("GET", "/health", source="127.0.0.3")[0])
                time.sleep(1.0 / (RATE / 2))
        th = threading.Thread(target=steady)
        th.start()
        codes, seconds, limited = blast(side, 80, "127.0.0.2")
        th.join()
        check_limited(codes, seconds, limited, 2, "burst from 127.0.0.2")
        print(f"   steady client on 127.0.0.3: {normal}")
        check(normal and all(c == 200 for c in normal),
              f"a client at half the rate should never be limited: {normal}")

        step("one X-Requester from two addresses, each under the per-address burst: limited "
             "as one client")
        time.sleep(BURST / RATE)
        who = {"X-Requester": f"rl-{uuid.uuid4().hex}"}
        results = {}

        def half(source):
            results[source] = blast(side, BURST - 2, source, headers=who, threads=2)
        ths = [threading.Thread(target=half, args=(s,)) for s in ("127.0.0.4", "127.0.0.5")]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        codes = results["127.0.0.4"][0] + results["127.0.0.5"][0]
        seconds = max(results["127.0.0.4"][1], results["127.0.0.5"][1])
        limited = results["127.0.0.4"][2] + results["127.0.0.5"][2]
        check_limited(codes, seconds, limited, 2, f"X-Requester {who['X-Requester']}")

        step("after a pause the limited client is served again")
        time.sleep(1.5)
        code = side.api("GET", "/health", source="127.0.0.2")[0]
        check(code == 200, f"127.0.0.2 after a pause: expected 200, got {code}")


if __name__ == "__main__":
    run(part_burst_and_normal)
