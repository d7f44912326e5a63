-- events in batches of 10 (impressions, steps, answers) with fresh ids.
local site_key = os.getenv("SITE_KEY") or "pk_bench"
local campaign = os.getenv("CAMPAIGN_ID") or "1"
local variant = os.getenv("VARIANT_ID") or "1"
local counter = 0
local thread_tag = "0"
local threads_made = 0

-- Each wrk thread has its own Lua state: give each a distinct tag so ids never collide.
setup = function(thread)
  threads_made = threads_made + 1
  thread:set("tag", tostring(threads_made) .. "-" .. tostring(os.time()))
end

init = function(args)
  thread_tag = tag
end

local function event(kind, visitor, n, data)
  return string.format(
    '{"id":"ev-%s-%09d-%02d","type":"%s","visitor_id":"%s","campaign_id":%s,"variant_id":%s,"data":%s}',
    thread_tag, counter, n, kind, visitor, campaign, variant, data)
end

request = function()
  counter = counter + 1
  local visitor = string.format("visitor-%s-%06d", thread_tag, counter % 100000)
  local events = {}
  for n = 1, 10 do
    if n == 1 then
      events[n] = event("impression", visitor, n, "{}")
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
