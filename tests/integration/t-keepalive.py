"""t-keepalive: 64 concurrent keep-alive clients never stall.

nginx keeps FastCGI connections open and a responder thread stays bound to
the connection it serves; with more idle kept connections than threads, new
requests would wait for a thread that never comes free (seen as requests
hanging, or no throughput at all). 64 clients, each on its own keep-alive
connection, send a bounded number of reads and writes; every one must be
answered (within a generous per-request timeout) with the right status.
"""

import http.client
import json
import os
import threading
import urllib.parse

from trlib import api, check, new_kind, run, step

CLIENTS = 64
REQUESTS_EACH = 20
TIMEOUT_S = 20  # a stall is a request that never gets its answer


def client(n, kind, start_url, results, batches):
    url = urllib.parse.urlsplit(os.environ["TR_URL"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT_S)
    ok = 0
    try:
        for i in range(REQUESTS_EACH):
            if i % 4 == 0:
                body = json.dumps([{"id": "a", "name": f"keepalive {n}.{i}", "kind": kind,
                                    "on_start": {"kind": "Webhook",
                                                 "params": {"url": start_url}}}])
                conn.request("POST", "/tasks", body, {"Content-Type": "application/json"})
                want = 201
            else:
                conn.request("GET", "/health" if i % 2 else "/tasks?page_size=1")
                want = 200
            resp = conn.getresponse()
            resp.read()
            if resp.getheader("X-Batch-ID"):
                batches.append(resp.getheader("X-Batch-ID"))
            if resp.status == want:
                ok += 1
            else:
                results.append(f"client {n} request {i}: HTTP {resp.status}, wanted {want}")
    except Exception as e:  # a timeout here is the stall this test is about
        results.append(f"client {n}: {type(e).__name__}: {e}")
    finally:
        conn.close()
    results.append(ok)


def part_many_keepalive_clients(rx):
    step(f"{CLIENTS} keep-alive clients x {REQUESTS_EACH} requests (reads and creations)")
    kind = new_kind("t-keepalive")
    results, batches = [], []
    threads = [threading.Thread(target=client, args=(n, kind, rx.url("/start"), results, batches))
               for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_S * REQUESTS_EACH)
    check(not any(t.is_alive() for t in threads), "some clients never finished")
    problems = [r for r in results if isinstance(r, str)]
    answered = sum(r for r in results if isinstance(r, int))
    check(not problems, f"{len(problems)} problems, first ones: {problems[:5]}")
    check(answered == CLIENTS * REQUESTS_EACH,
          f"{answered} of {CLIENTS * REQUESTS_EACH} requests answered as expected")
    print(f"   ok: {answered} requests answered")
    for batch in batches:  # leave nothing running for the next tests
        api("DELETE", f"/batches/{batch}")


if __name__ == "__main__":
    run(part_many_keepalive_clients)
