-- wrk script of scripts/bench: one fixed request, and one machine-readable
-- summary line at the end.
--
--   BENCH_METHOD     GET (default), POST, PATCH, ...
--   BENCH_BODY_FILE  file whose content is the request body (optional)
--
-- The summary line (latencies in microseconds):
--   BENCH requests=N duration_us=N p50_us=N p90_us=N p99_us=N max_us=N
--         connect_errors=N read_errors=N write_errors=N timeouts=N non2xx=N

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
   local f = assert(io.open(body_file, "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.headers["Content-Type"] = "application/json"
end
wrk.headers["X-Requester"] = "bench"

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d non2xx=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.timeout, e.status))
end
