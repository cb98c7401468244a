-- wrk script for src/review_analysis/bench/serving.py: POSTs review texts in turn (one JSON body per line
-- of a file), closed loop, or open loop with exponential gaps between a connection's requests
-- (Poisson arrivals), and prints its summary as one JSON line.
--
--   wrk -t1 -c16 -d20s -s scripts/wrk_reviews.lua URL -- BODIES_FILE KEY [MEAN_GAP_MS]

local bodies = {}
local index = 0
local mean_gap_ms = 0

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  mean_gap_ms = tonumber(args[3] or "0")
  math.randomseed(os.time())
  index = math.random(#bodies)
end

function request()
  index = index % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[index])
end

function delay()
  if mean_gap_ms == 0 then
    return 0
  end
  return math.floor(-math.log(1 - math.random()) * mean_gap_ms)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
