-- wrk script for benches/live.sh: a fixed request rate per connection (WL_DELAY_MS between
-- requests), rotating over a few endpoints, and every WL_CLOSE_EVERY-th request (default
-- 50) closing its connection so that the flow table sees connections come and go.
local delay_ms = tonumber(os.getenv("WL_DELAY_MS") or "0")
local close_every = tonumber(os.getenv("WL_CLOSE_EVERY") or "50")
local paths = { "/api/item/1", "/api/item/2", "/static/page.html", "/api/created", "/missing" }
local n = 0

request = function()
  n = n + 1
  local path = paths[(n % #paths) + 1]
  local headers = { ["Accept"] = "application/json" }
  if n % close_every == 0 then
    headers["Connection"] = "close"
  end
  if path == "/api/created" then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", path, headers, '{"name":"widget","n":' .. n .. '}')
  end
  return wrk.format("GET", path, headers)
end

if delay_ms > 0 then
  delay = function()
    return delay_ms
  end
end
