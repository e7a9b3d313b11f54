-- wrk script: POSTs pre-signed Standard Webhooks requests from a pool file (one per line:
-- id, timestamp, signature, body, tab-separated; each id is a distinct idempotency key), counts
-- the answers by status and collects the event ids of the 202s for the presence check.
-- BENCH_POOL: the pool file; BENCH_OUT: where done() writes the statuses and ids.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  reqs = {}
  n = 0
  i = 0
  ids = {}
  statuses = {}
  for line in io.lines(os.getenv("BENCH_POOL")) do
    local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    n = n + 1
    reqs[n] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["webhook-id"] = id,
      ["webhook-timestamp"] = ts,
      ["webhook-signature"] = sig,
    }, body)
  end
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 then
    ids[#ids + 1] = body:match('"event_id":(%d+)')
  end
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("BENCH_OUT"), "w")
  out:write(string.format("duration_us %d\n", summary.duration))
  out:write(string.format("requests %d\n", summary.requests))
  out:write(string.format("errors %d %d %d %d %d\n", summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
  out:write(string.format("latency_us %d %d %d %d\n", latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      out:write(string.format("status %d %d\n", status, count))
    end
    for _, id in ipairs(thread:get("ids")) do
      out:write("id ", id, "\n")
    end
  end
  out:close()
end
