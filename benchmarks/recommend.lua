-- wrk script for benchmarks/load_test.py: POST /v1/recommendations for a customer drawn at
-- random from 1..CUSTOMERS (ids of the synthetic model), and count the model versions seen.
-- Each response's version header must match the version in its body: a mismatch would be an
-- answer mixing two models. Counts come back through done() as lines "version <v> <count>".
local customers = tonumber(os.getenv("CUSTOMERS") or "138000")
local n = tonumber(os.getenv("N") or "10")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000)
  versions = {}
  mixed = 0
  bad = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body = string.format('{"customer": %d, "n": %d}', math.random(1, customers), n)
  return wrk.format(nil, "/v1/recommendations", nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    return
  end
  local header = headers["x-model-version"] or headers["X-Model-Version"] or "none"
  local inside = body:match('"model_version":"(%x+)"') or "none"
  -- items are named v<generation>-<n> by the load test: every item must name the same
  -- generation, and the generation belongs to one version (checked by load_test.py)
  local generation = body:match('"item":"v(%d+)%-')
  for g in body:gmatch('"item":"v(%d+)%-') do
    if g ~= generation then mixed = mixed + 1; break end
  end
  if header ~= inside then mixed = mixed + 1 end
  local key = inside .. " " .. (generation or "none")
  versions[key] = (versions[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  local mixed_total, bad_total = 0, 0
  for _, thread in ipairs(threads) do
    local seen = thread:get("versions")
    for k, v in pairs(seen) do merged[k] = (merged[k] or 0) + v end
    mixed_total = mixed_total + thread:get("mixed")
    bad_total = bad_total + thread:get("bad")
  end
  for k, v in pairs(merged) do io.write(string.format("version %s %d\n", k, v)) end
  io.write(string.format("mixed %d\nnon200 %d\n", mixed_total, bad_total))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("latency_p%s_us %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("requests %d\nduration_us %d\nerrors_connect %d\nerrors_read %d\n" ..
    "errors_write %d\nerrors_status %d\nerrors_timeout %d\n", summary.requests, summary.duration,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
