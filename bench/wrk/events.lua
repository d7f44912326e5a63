-- events in batches of 10 with fresh ids, each batch from one of the EVENT_VISITORS seeded
-- visitors (event-0000000 ..), who hold an assignment to CAMPAIGN_ID (variant VARIANT_ID) as a
-- decide leaves it: an impression, steps and answers, and a completion. Visitor n = the request's
-- place across the THREADS wrk threads, wrapping around, so visitors send several batches.
-- done() prints "events-stats accepted=..": the events the server acknowledged (sum of
-- "accepted" in 202s), which the benchmark compares with the rows stored and applied.
local site_key = os.getenv("SITE_KEY") or "pk_bench"
local campaign = os.getenv("CAMPAIGN_ID") or "1"
local variant = os.getenv("VARIANT_ID") or "1"
local visitors = tonumber(os.getenv("EVENT_VISITORS") or "20000")
local thread_count = tonumber(os.getenv("THREADS") or "2")
-- Globals, not locals: done() reads them from each thread with thread:get().
counter, accepted = 0, 0
local threads = {}

-- Each wrk thread has its own Lua state: give each a distinct tag so ids never collide.
setup = function(thread)
  table.insert(threads, thread)
  thread:set("place", #threads - 1)
  thread:set("tag", tostring(#threads) .. "-" .. tostring(os.time()))
end

local function event(kind, visitor, n, data)
  return string.format(
    '{"id":"ev-%s-%09d-%02d","type":"%s","visitor_id":"%s","campaign_id":%s,"variant_id":%s,"data":%s}',
    tag, counter, n, kind, visitor, campaign, variant, data)
end

request = function()
  local visitor = string.format("event-%07d", (counter * thread_count + place) % visitors)
  counter = counter + 1
  local events = {}
  for n = 1, 10 do
    if n == 1 then
      events[n] = event("impression", visitor, n, "{}")
    elseif n == 10 then
      events[n] = event("complete", visitor, n, "{}")
    elseif n % 2 == 0 then
      events[n] = event("step", visitor, n, '{"step_id":"q1"}')
    else
      events[n] = event("answer", visitor, n, '{"step_id":"q1","value":"a"}')
    end
  end
  local body = '{"events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "/api/v1/sites/" .. site_key .. "/events",
    {["Content-Type"] = "text/plain;charset=UTF-8", ["Origin"] = "https://shop.example"}, body)
end

response = function(status, headers, body)
  if status == 202 then
    accepted = accepted + tonumber(body:match('"accepted":%s*(%d+)') or "0")
  end
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("accepted")
  end
  io.write(string.format("events-stats accepted=%d\n", total))
end
