"""t-ui: the web UI at /ui/ (API.md Part 2, "Web UI (F1)") in a real browser.

Debian's Chromium, headless, driven by Playwright (`playwright-core` from
npm, installed on the first run into <build dir>/npm-ui, as
t-standard-webhooks installs its package; skipped, saying why, when the
registry cannot be reached). This file makes the data through the API (and a
webhook receiver): a small batch, a batch to stop, a 1,000-task batch, a dead
letter, and a side stack with API tokens on; ui-browser.mjs then loads every
page, checks what it shows against the API, clicks the buttons (cancel,
pause, resume, retry with downstream, stop, replay; a schedule's pause,
resume, trigger, edit, create and delete), checks their effect
through the API, measures the 1,000-task DAG's draw time, and saves a
screenshot of every page in <build dir>/test-output/ui/.
"""

import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import uuid

from seclib import SideStack
from trlib import (api, check, create, create_map, dep, env, expect, new_kind, patch_task, step,
                   task, wait_for, wait_status, webhook)
from workerlib import run, worker_settings

PACKAGE = "playwright-core@1.65.1"
CHROMIUM = "/usr/bin/chromium"
HERE = os.path.dirname(os.path.abspath(__file__))
BIG = 1000          # tasks of the big batch: 10 layers of 100
BIG_LAYER = 100


def npm_dir():
    """<build dir>/npm-ui with playwright-core installed, or exits 77 (skip) saying why."""
    where = os.path.join(env("TR_BIN"), "npm-ui")
    if os.path.isdir(os.path.join(where, "node_modules", "playwright-core")):
        return where
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        print("SKIP: t-ui: node and npm are needed (scripts/deps test installs them)")
        sys.exit(77)
    os.makedirs(where, exist_ok=True)
    proc = subprocess.run([npm, "install", "--prefix", where, "--no-audit", "--no-fund",
                           PACKAGE], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        print(f"SKIP: t-ui: npm install {PACKAGE} failed (registry unreachable?): "
              f"{proc.stderr.strip()[-400:]}")
        sys.exit(77)
    return where


def big_batch(kind, hold_url, seed=16):
    """10 layers of 100 tasks; each task below the first depends on 1 to 3
    tasks of the layer above (some without requiring success). The first
    layer starts (and stays Running), the others wait."""
    rnd = random.Random(seed)
    tasks = []
    for i in range(BIG):
        layer = i // BIG_LAYER
        deps = []
        if layer:
            parents = {(layer - 1) * BIG_LAYER + rnd.randrange(BIG_LAYER)
                       for _ in range(rnd.randint(1, 3))}
            deps = [dep(f"t{p}", requires_success=rnd.random() < 0.8) for p in sorted(parents)]
        tasks.append(task(f"t{i}", name=f"step {layer} item {i % BIG_LAYER}", kind=kind,
                          timeout=86400, on_start=hold_url, dependencies=deps))
    return tasks


def dead_letters():
    return expect(api("GET", "/dead-letters?page_size=100"), 200, "GET /dead-letters")


def make_fixture(rx, side, read_token, write_token):
    settings = worker_settings()
    kind = new_kind("t-ui")
    requester = "t-ui-" + uuid.uuid4().hex[:8]
    tenant = random.randint(10**6, 10**9)
    headers = {"X-Requester": requester}
    hold = rx.url("/hold")
    rx.behave("/hold", 200)
    rx.behave("/dl-end", 500, body=b'{"error": "receiver down"}')

    step("a dead letter: a task whose on_success target answers 500 every time")
    dl, _ = create_map([task("dl", name="ui dead letter", kind=kind + "-dl", timeout=86400,
                             on_start=hold, on_success=[webhook(rx.url("/dl-end"))])],
                       headers=headers)
    wait_status(dl["dl"]["id"], "Running", 20)
    patch_task(dl["dl"]["id"], {"status": "Success"})

    step("a small batch: root (Running), pause-me and cancel-me (Waiting), leaf")
    small, small_id = create_map([
        task("root", name="ui root", kind=kind, timeout=86400, on_start=hold, max_retries=2,
             expected_count=1000, metadata={"tenant_id": tenant, "ui": "root"}),
        task("pause-me", name="ui pause me", kind=kind, timeout=120, on_start=hold,
             metadata={"tenant_id": tenant}, dependencies=[dep("root")]),
        task("cancel-me", name="ui cancel me", kind=kind, on_start=hold,
             dependencies=[dep("root")]),
        task("leaf", name="ui leaf", kind=kind, on_start=hold,
             dependencies=[dep("pause-me", requires_success=False), dep("cancel-me")]),
    ], headers=headers)
    wait_status(small["root"]["id"], "Running", 20)

    step("a batch to stop, and one for the token checks")
    stop, stop_id = create_map([
        task("root", name="ui stop root", kind=kind + "-stop", timeout=86400, on_start=hold),
        task("a", name="ui stop a", kind=kind + "-stop", on_start=hold, dependencies=[dep("root")]),
        task("b", name="ui stop b", kind=kind + "-stop", on_start=hold, dependencies=[dep("a")]),
    ], headers=headers)
    auth, _ = create_map([
        task("root", name="ui auth root", kind=kind + "-auth", timeout=86400, on_start=hold),
        task("held", name="ui auth held", kind=kind + "-auth", on_start=hold,
             dependencies=[dep("root")]),
    ], headers=headers)

    step(f"a batch of {BIG} tasks (10 layers of {BIG_LAYER})")
    big, big_id = create(big_batch(kind + "-big", hold), headers=headers)
    first = big[0]["id"]
    wait_status(first, "Running", 60)

    step("a schedule (every day at 03:00 in Tokyo) for the schedules page")
    schedule = "ui-sched-" + uuid.uuid4().hex[:8]
    expect(api("POST", "/schedules", {
        "name": schedule, "cron": "0 3 * * *", "timezone": "Asia/Tokyo",
        "tasks": [task("report", name="ui scheduled report", kind=kind + "-sched",
                       timeout=86400, on_start=hold)]}, headers=headers),
           201, "POST /schedules")

    step("the dead letter is listed; its target is repaired for the replay")
    budget = settings.all_retries_s() + settings.retry_attempts * 1.0 + 20
    entry = wait_for(lambda: next((d for d in dead_letters() if d["task_id"] == dl["dl"]["id"]), None),
                     budget, "the dead letter of the ui task")
    rx.behave("/dl-end", 200)

    return {
        "url": env("TR_URL"), "kind": kind, "requester": requester, "tenant": tenant,
        "small_batch": small_id, "small": {k: v["id"] for k, v in small.items()},
        "stop_batch": stop_id, "stop": {k: v["id"] for k, v in stop.items()},
        "big_batch": big_id, "big_kind": kind + "-big", "big_running": first,
        "dead_letter": entry["id"], "dead_letter_task": dl["dl"]["id"],
        "side_url": side.url, "read_token": read_token, "write_token": write_token,
        "auth_task": auth["held"]["id"], "schedule": schedule, "hold_url": hold,
    }


def part_browser(rx):
    where = npm_dir()
    check(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: scripts/deps test installs "
          "Debian's chromium package")
    read_token = "r-" + secrets.token_hex(16)
    write_token = "w-" + secrets.token_hex(16)
    tokens = f"ui-reader:{read_token}:read, ui-writer:{write_token}:write"
    with SideStack("ui-auth", fcgi_env={"TASKRUNNER_API_TOKENS": tokens}) as side:
        fixture = make_fixture(rx, side, read_token, write_token)
        out = os.path.join(env("TR_BIN"), "test-output", "ui")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        fixture.update({"npm_dir": where, "shots": out, "chromium": CHROMIUM})
        path = os.path.join(out, "fixture.json")
        with open(path, "w") as f:
            json.dump(fixture, f, indent=1)
        step(f"the browser test (screenshots in {out})")
        proc = subprocess.run(["node", os.path.join(HERE, "ui-browser.mjs"), path],
                              timeout=420, stdout=sys.stdout, stderr=sys.stderr)
        check(proc.returncode == 0, f"ui-browser.mjs failed (exit {proc.returncode}; above)")
    step("the replayed dead letter's call reached its (repaired) target")
    wait_for(lambda: any(c.path == "/dl-end" for c in rx.received()
                         if c.headers.get("x-task-id") == fixture["dead_letter_task"]
                         and c.wall > 0) and
             not any(d["id"] == fixture["dead_letter"] for d in dead_letters()),
             20, "the replayed call")


if __name__ == "__main__":
    run(part_browser)
