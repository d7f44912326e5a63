-- spin: each request is the first spin of a distinct visitor, who holds the assignment a decide
-- leaves behind (seeded: spin-0000000 .. SPIN_VISITORS - 1). Visitor n = SPIN_FROM + the request's
-- place across the THREADS wrk threads, so the warm-up and the timed run spin different visitors.
-- Past the seeded visitors it wraps around: those answers are repeats ("repeated": true) and are
-- counted apart. done() prints "spin-stats ok=.. repeated=.. won=.. next=..": ok = 200 answers,
-- won = answers carrying a code, next = the SPIN_FROM for a following run.
local site_key = os.getenv("WHEEL_SITE_KEY") or "pk_bench_wheel"
local campaign = os.getenv("WHEEL_CAMPAIGN_ID") or "6"
local first = tonumber(os.getenv("SPIN_FROM") or "0")
local visitors = tonumber(os.getenv("SPIN_VISITORS") or "100000")
local thread_count = tonumber(os.getenv("THREADS") or "2")
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
  thread:set("place", #threads - 1)
end

-- Globals, not locals: done() reads them from each thread with thread:get().
counter, ok, repeated, won = 0, 0, 0, 0

request = function()
  local n = (first + counter * thread_count + place) % visitors
  counter = counter + 1
  local body = string.format('{"visitor_id":"spin-%07d","campaign_id":%s}', n, campaign)
  return wrk.format("POST", "/api/v1/sites/" .. site_key .. "/spin",
    {["Content-Type"] = "text/plain;charset=UTF-8", ["Origin"] = "https://shop.example"}, body)
end

response = function(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if body:find('"repeated":%s*true') then repeated = repeated + 1 end
    if not body:find('"code":%s*null') then won = won + 1 end
  end
end

done = function(summary, latency, requests)
  local total_ok, total_repeated, total_won, most = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_repeated = total_repeated + thread:get("repeated")
    total_won = total_won + thread:get("won")
    most = math.max(most, thread:get("counter"))
  end
  io.write(string.format("spin-stats ok=%d repeated=%d won=%d next=%d\n",
    total_ok, total_repeated, total_won, first + most * thread_count))
end
