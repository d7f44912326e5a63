-- The bare "hello JSON" endpoint of the same server: the ceiling the others are compared with.
request = function()
  return wrk.format("GET", "/healthz")
end
