// peers.mjs SETTINGS.json: graphile-worker or pg-boss measured the way
// scripts/bench measures Task Runner (phase "peers"), on the bench's own
// PostgreSQL, with the bench's receivers. Each peer is driven by its own
// Node client in one process (no HTTP in front of it, as their users run
// them); its job handler makes the HTTP POST that Task Runner's on_start
// makes. Prints one JSON line per figure.
//
// Settings: {peer: "graphile" | "pgboss", conn, rx_url, npm_dir, seconds,
//            single_clients, batch_clients, batch_size, starts_jobs,
//            starts_concurrency, starts_bound_s, latency_n, latency_warm, bound_s}
//
// Figures:
//   single   jobs/s of one-job adds, single_clients loops at once, `seconds` long
//   batch    jobs/s of batch_size-job adds, batch_clients loops at once
//   starts   starts_jobs jobs added first, then the worker started: jobs/s
//            from its start to the last handler's POST answered, within
//            starts_bound_s (graphile also with its local queue and batched
//            completions, its documented high-throughput set-up)
//   latency  latency_n single adds one at a time with the worker running:
//            from before the add to the handler's POST answered, p50/p99

import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";

const s = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const require = createRequire(path.join(s.npm_dir, "node_modules", "_"));
const pg = require("pg");

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const rx = new URL(s.rx_url);

// The POST a started task makes: to the bench's receiver, answered 2xx.
function post(body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ agent, host: rx.hostname, port: rx.port, path: rx.pathname, method: "POST",
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode < 300 ? resolve() : reject(new Error(`receiver: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] : null;
};
const emit = (o) => console.log(JSON.stringify({ peer: s.peer, ...o }));

// n async loops calling fn until `seconds` pass; returns calls and latencies.
async function loops(n, seconds, fn) {
  const end = now() + seconds * 1000;
  const lat = [];
  let calls = 0;
  const t0 = now();
  await Promise.all(Array.from({ length: n }, async () => {
    while (now() < end) {
      const a = now();
      await fn();
      lat.push(now() - a);
      calls++;
    }
  }));
  return { calls, elapsed: (now() - t0) / 1000, lat };
}

// Waiting for handlers: job number -> resolve.
const waiting = new Map();
let handled = 0;
let lastHandled = 0;
async function handle(i) {
  await post({ job: i });
  handled++;
  lastHandled = now();
  const w = waiting.get(i);
  if (w) { waiting.delete(i); w(); }
}

// --- graphile-worker ------------------------------------------------------------

async function graphile() {
  const gw = require("graphile-worker");
  const utils = await gw.makeWorkerUtils({ connectionString: s.conn, maxPoolSize: s.single_clients });
  await utils.migrate();
  const pool = new pg.Pool({ connectionString: s.conn, max: 1 });
  const clear = () => pool.query("DELETE FROM graphile_worker._private_jobs");
  const specs = (n, base) => Array.from({ length: n }, (_, k) => ({ identifier: "start", payload: { i: base + k } }));
  const runWorker = (localQueue) => gw.run({
    connectionString: s.conn, concurrency: s.starts_concurrency, maxPoolSize: s.starts_concurrency + 4,
    noHandleSignals: true, pollInterval: 2000,
    taskList: { start: async (payload) => handle(payload.i) },
    preset: localQueue ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } } : undefined,
  });
  try {
    await clear();
    let n = 0;
    const single = await loops(s.single_clients, s.seconds, () => utils.addJob("start", { i: n++ }));
    emit({ figure: "single", rate: single.calls / single.elapsed, p50: pct(single.lat, 50), p99: pct(single.lat, 99) });
    await clear();
    const batch = await loops(s.batch_clients, s.seconds, () => utils.addJobs(specs(s.batch_size, 0)));
    emit({ figure: "batch", rate: (batch.calls * s.batch_size) / batch.elapsed });
    for (const localQueue of [false, true]) {
      await clear();
      for (let k = 0; k < s.starts_jobs; k += 1000) await utils.addJobs(specs(Math.min(1000, s.starts_jobs - k), k));
      handled = 0;
      const t0 = now();
      const runner = await runWorker(localQueue);
      const deadline = t0 + s.starts_bound_s * 1000;
      while (handled < s.starts_jobs && now() < deadline) await sleep(5);
      emit({ figure: localQueue ? "starts_local_queue" : "starts", jobs: handled,
        rate: handled / ((lastHandled - t0) / 1000) });
      await runner.stop();
    }
    await clear();
    const runner = await runWorker(false);
    const lat = [];
    for (let k = 0; k < s.latency_warm + s.latency_n; k++) {
      const i = 1e9 + k;
      const done = new Promise((r) => waiting.set(i, r));
      const t0 = now();
      await utils.addJob("start", { i });
      await done;
      if (k >= s.latency_warm) lat.push(now() - t0);
      await sleep(2); // an idle system for each, as the bench's latency phase
    }
    emit({ figure: "latency", p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length });
    await runner.stop();
  } finally {
    await clear().catch(() => {});
    await pool.end();
    await utils.release();
  }
}

// --- pg-boss ----------------------------------------------------------------------

async function pgboss() {
  const { PgBoss } = require("pg-boss");
  const boss = new PgBoss({ connectionString: s.conn, max: s.single_clients + 4, useListenNotify: true,
    supervise: false, schedule: false });
  boss.on("error", (e) => console.error(`pg-boss: ${e.message}`));
  await boss.start();
  const queue = "start";
  const reset = async () => {
    await boss.deleteQueue(queue).catch(() => {});
    await boss.createQueue(queue, { notify: true });
  };
  const work = () => boss.work(queue, { batchSize: 64, localConcurrency: 2, pollingIntervalSeconds: 0.5,
    burstWhenBatchFull: true }, async (jobs) => { await Promise.all(jobs.map((j) => handle(j.data.i))); });
  try {
    await reset();
    let n = 0;
    const single = await loops(s.single_clients, s.seconds, () => boss.send(queue, { i: n++ }));
    emit({ figure: "single", rate: single.calls / single.elapsed, p50: pct(single.lat, 50), p99: pct(single.lat, 99) });
    await reset();
    const jobs = (k0, size) => Array.from({ length: size }, (_, k) => ({ data: { i: k0 + k } }));
    const batch = await loops(s.batch_clients, s.seconds, () => boss.insert(queue, jobs(0, s.batch_size)));
    emit({ figure: "batch", rate: (batch.calls * s.batch_size) / batch.elapsed });
    await reset();
    for (let k = 0; k < s.starts_jobs; k += 1000) await boss.insert(queue, jobs(k, Math.min(1000, s.starts_jobs - k)));
    handled = 0;
    const t0 = now();
    const id = await work();
    const deadline = t0 + s.starts_bound_s * 1000;
    while (handled < s.starts_jobs && now() < deadline) await sleep(5);
    emit({ figure: "starts", jobs: handled, rate: handled / ((lastHandled - t0) / 1000) });
    await boss.offWork(queue, { id, wait: true }).catch(() => boss.offWork(queue));
    await reset();
    await work();
    const lat = [];
    for (let k = 0; k < s.latency_warm + s.latency_n; k++) {
      const i = 1e9 + k;
      const done = new Promise((r) => waiting.set(i, r));
      const t0 = now();
      await boss.send(queue, { i });
      await done;
      if (k >= s.latency_warm) lat.push(now() - t0);
      await sleep(2);
    }
    emit({ figure: "latency", p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length });
  } finally {
    await boss.deleteQueue(queue).catch(() => {});
    await boss.stop({ graceful: false, wait: true }).catch(() => {});
  }
}

const timer = setTimeout(() => { console.error("peers: over the time bound"); process.exit(2); }, s.bound_s * 1000);
try {
  await (s.peer === "graphile" ? graphile() : pgboss());
  clearTimeout(timer);
  agent.destroy();
} catch (e) {
  console.error(`peers: ${s.peer}: ${e.stack}`);
  process.exit(1);
}
