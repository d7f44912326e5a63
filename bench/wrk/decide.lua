-- decide with a mix of returning visitors (a pool of 5,000 ids) and new ones (half the calls).
local site_key = os.getenv("SITE_KEY") or "pk_bench"
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

request = function()
  counter = counter + 1
  local visitor
  if counter % 2 == 0 then
    visitor = string.format("returning-%05d", math.random(1, 5000))
  else
    visitor = string.format("new-%s-%09d", thread_tag, counter)
  end
  local body = string.format(
    '{"visitor_id":"%s","url":"https://shop.example/products/%d","page_views":%d,"device":"desktop"}',
    visitor, counter % 50, counter % 7 + 1)
  return wrk.format("POST", "/api/v1/sites/" .. site_key .. "/decide",
    {["Content-Type"] = "text/plain;charset=UTF-8", ["Origin"] = "https://shop.example"}, body)
end
