-- wrk script for benchmarks/api.py: every request is a NEW claim, optional paced rate, JSON summary.
--
-- Configured through the environment (wrk passes no arguments to setup/done):
--   BENCH_BODIES   file of JSON claim bodies, one per line, each holding the placeholder
--                  __CLAIM_ID__ once (as the value of claim_id)
--   BENCH_TAG      prefix of this run's claim ids (unique per point: ids are never reused)
--   BENCH_KEY      API key, sent as "Authorization: Bearer <key>"
--   BENCH_PATH     request path (default /v1/score)
--   BENCH_RATE     target requests/s over all threads; 0 or unset = no pacing (saturation)
--   BENCH_THREADS  wrk's -t (each thread paces rate / threads)
--
-- Pacing is closed-loop: wrk's delay() holds a connection before its next request, on a
-- per-thread schedule of evenly spaced send slots. When every connection is busy the schedule
-- slips and latency is measured from the actual send (coordinated omission is possible).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clk_id, bench_timespec_t *tp);
]]
local ts = ffi.new("bench_timespec_t")

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local n_threads_seen = 0

function setup(thread)
  thread:set("tid", n_threads_seen)
  n_threads_seen = n_threads_seen + 1
  table.insert(threads, thread)
end

function init(args)
  prefixes, suffixes = {}, {}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    local a, b = line:find("__CLAIM_ID__", 1, true)
    if a then
      prefixes[#prefixes + 1] = line:sub(1, a - 1)
      suffixes[#suffixes + 1] = line:sub(b + 1)
    end
  end
  n_bodies = #prefixes
  if n_bodies == 0 then
    error("no bodies with __CLAIM_ID__ in " .. tostring(os.getenv("BENCH_BODIES")))
  end
  tag = os.getenv("BENCH_TAG") or "bench"
  path = os.getenv("BENCH_PATH") or "/v1/score"
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or ""),
  }
  n_threads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local rate = tonumber(os.getenv("BENCH_RATE") or "0")
  interval_ms = 0
  if rate > 0 then
    interval_ms = 1000.0 * n_threads / rate
  end
  next_slot = nil
  seq = 0
  responses = 0
  non200 = 0
  first_bad_status = 0
  first_bad_body = ""
end

function request()
  seq = seq + 1
  -- threads interleave through the bodies, so no two threads send the same body at once
  local i = (tid + (seq - 1) * n_threads) % n_bodies + 1
  local body = prefixes[i] .. tag .. "-" .. tid .. "-" .. seq .. suffixes[i]
  return wrk.format("POST", path, headers, body)
end

if tonumber(os.getenv("BENCH_RATE") or "0") > 0 then
  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now - 1000.0 then
      next_slot = now -- start, or more than 1 s behind: do not burst to catch up
    end
    local slot = next_slot
    next_slot = next_slot + interval_ms
    local wait = slot - now
    if wait <= 0 then
      return 0
    end
    return math.floor(wait + 0.5)
  end
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad_status == 0 then
      first_bad_status = status
      first_bad_body = string.sub(body or "", 1, 300)
    end
  end
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local n_responses, n_non200, bad_status, bad_body = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    n_responses = n_responses + (t:get("responses") or 0)
    n_non200 = n_non200 + (t:get("non200") or 0)
    local s = t:get("first_bad_status") or 0
    if bad_status == 0 and s ~= 0 then
      bad_status = s
      bad_body = t:get("first_bad_body") or ""
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "responses": %d, "non_200": %d, ' ..
    '"first_non_200_status": %d, "first_non_200_body": %s, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "p99_9": %d, "max": %d}}\n',
    summary.requests, summary.duration, n_responses, n_non200, bad_status, json_string(bad_body),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
