-- wrk script for bench/load.py: GET <path>?username=<random user>, with Basic auth.
-- Arguments (after `--`): path prefix (e.g. /rest/usermanagement/1/user?username=),
-- file of URL-encoded user names (one a line), Authorization header value, seed.
-- done() prints one line "WRK_JSON {...}" that load.py parses.

local names = {}
local prefix = ""
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("id", thread_count)
end

function init(args)
  prefix = args[1]
  for line in io.lines(args[2]) do
    if #line > 0 then names[#names + 1] = line end
  end
  wrk.headers["Authorization"] = args[3]
  wrk.headers["Accept"] = "application/xml"
  -- Each wrk thread has its own Lua state: seed each differently but reproducibly.
  math.randomseed(tonumber(args[4]) * 1000 + (id or 0))
end

function request()
  return wrk.format("GET", prefix .. names[math.random(#names)])
end

function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    p[#p + 1] = string.format('"%s":%d', tostring(q), latency:percentile(q))
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"percentiles":{%s}}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, table.concat(p, ",")))
end
