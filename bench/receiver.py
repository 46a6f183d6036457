#!/usr/bin/env python3
"""receiver.py: the webhook receiver of scripts/bench (Python 3 stdlib, asyncio).

    receiver.py --port PORT [--events] [--complete] [--complete-after MS] [--pool N]

A raw HTTP/1.1 keep-alive server on 127.0.0.1:PORT that answers 200 with an
empty body to every request at once. It also:

  --events     prints one line per webhook call on stdout, as soon as it has
               read the request head:
                   EV <trigger> <task id> <time.monotonic()>
               (CLOCK_MONOTONIC: the same clock as the bench's own
               time.monotonic(), so arrival minus send time is a latency)
  --complete   for each on_start call (X-Task-Trigger: start), sends
               PATCH <handle> {"status": "Success"} over a pool of N kept-alive
               connections (--pool, default 16) to the handle's host: the
               executor that finishes every task at once (the full lifecycle).
  --complete-after MS
               with --complete, sends each PATCH MS milliseconds after its
               on_start call arrived: an executor whose tasks take that long
               (the rules phase: how fast freed places are taken again).

GET /_stats answers JSON counters: calls per trigger, the monotonic times of
the first and last call of each trigger, PATCHes answered 200 and not.

The bench measures this receiver's own ceiling with wrk against it (any
request without X-Task-Id is answered and counted as trigger "none").
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.parse

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
HEAD_MAX = 65536


class Stats:
    def __init__(self):
        self.calls = {}        # trigger -> count
        self.first = {}        # trigger -> monotonic time of the first call
        self.last = {}         # trigger -> monotonic time of the last call
        self.patch_ok = 0
        self.patch_failed = 0
        self.patch_errors = []  # a few samples
        self.patch_queue_max = 0

    def record(self, trigger, t):
        self.calls[trigger] = self.calls.get(trigger, 0) + 1
        self.first.setdefault(trigger, t)
        self.last[trigger] = t

    def as_json(self):
        return json.dumps({"calls": self.calls, "first": self.first, "last": self.last,
                           "patch_ok": self.patch_ok, "patch_failed": self.patch_failed,
                           "patch_errors": self.patch_errors[:5],
                           "patch_queue_max": self.patch_queue_max,
                           "now": time.monotonic()}).encode()


class Receiver(asyncio.Protocol):
    """One server connection: parses requests (pipelining allowed) and answers."""

    def __init__(self, app):
        self.app = app
        self.buf = bytearray()
        self.need_body = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        now = time.monotonic()
        self.buf += data
        out = []
        while True:
            if self.need_body:
                take = min(self.need_body, len(self.buf))
                del self.buf[:take]
                self.need_body -= take
                if self.need_body:
                    break
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > HEAD_MAX:
                    self.transport.close()
                break
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[:end + 4]
            out.append(self.app.handle(head, now))
            lines = head.split("\r\n")
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    self.need_body = int(value.strip() or 0)
        if out:
            self.transport.write(b"".join(out))
        self.app.flush()


class App:
    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.events = []
        self.patches = asyncio.Queue()

    def handle(self, head, now):
        lines = head.split("\r\n")
        method, _, rest = lines[0].partition(" ")
        target = rest.rpartition(" ")[0] or rest
        if method == "GET" and target == "/_stats":
            body = self.stats.as_json()
            return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d"
                    b"\r\n\r\n" % len(body)) + body
        task_id = trigger = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "x-task-id":
                task_id = value.strip()
            elif name == "x-task-trigger":
                trigger = value.strip()
        trigger = trigger or "none"
        self.stats.record(trigger, now)
        if self.args.events and task_id:
            self.events.append(f"EV {trigger} {task_id} {now:.6f}\n")
        if self.args.complete and trigger == "start":
            query = urllib.parse.urlsplit(target).query
            handle = urllib.parse.parse_qs(query).get("handle", [None])[0]
            if handle:
                if self.args.complete_after > 0:
                    asyncio.get_running_loop().call_later(self.args.complete_after / 1000,
                                                          self.queue_patch, handle)
                else:
                    self.queue_patch(handle)
        return OK

    def queue_patch(self, handle):
        self.patches.put_nowait(handle)
        if self.patches.qsize() > self.stats.patch_queue_max:
            self.stats.patch_queue_max = self.patches.qsize()

    def flush(self):
        if self.events:
            sys.stdout.write("".join(self.events))
            sys.stdout.flush()
            self.events.clear()


async def read_response(reader):
    """Reads one HTTP/1.1 response (Content-Length or chunked); returns the
    status code and the body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, chunked = None, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers from nginx
                break
            body += await reader.readexactly(size + 2)
            del body[-2:]
        return status, bytes(body)
    if length:
        return status, await reader.readexactly(length)
    return status, b""


async def patcher(app):
    """One kept-alive client connection sending PATCH Success for queued handles."""
    reader = writer = None
    payload = b'{"status": "Success"}'
    while True:
        handle = await app.patches.get()
        url = urllib.parse.urlsplit(handle)
        path = url.path + ("?" + url.query if url.query else "")
        request = (f"PATCH {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                   f"Content-Type: application/json\r\nX-Requester: bench-receiver\r\n"
                   f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
        for attempt in (1, 2):
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
                writer.write(request)
                status, body = await read_response(reader)
                if status == 200:
                    app.stats.patch_ok += 1
                else:
                    app.stats.patch_failed += 1
                    app.stats.patch_errors.append(f"{status} {body[:200]!r}")
                break
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                if writer is not None:
                    writer.close()
                reader = writer = None
                if attempt == 2:
                    app.stats.patch_failed += 1
                    app.stats.patch_errors.append(f"{type(e).__name__}: {e}")


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--events", action="store_true")
    p.add_argument("--complete", action="store_true")
    p.add_argument("--complete-after", type=int, default=0, metavar="MS")
    p.add_argument("--pool", type=int, default=16)
    args = p.parse_args()
    app = App(args)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Receiver(app), "127.0.0.1", args.port,
                                      backlog=4096, reuse_address=True)
    if args.complete:
        for _ in range(args.pool):
            asyncio.ensure_future(patcher(app))
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
