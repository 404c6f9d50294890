-- wrk script: each connection waits WRK_DELAY_MS between requests, so that
-- connections / delay paces the load (wrk itself sends as fast as it can).
local d = tonumber(os.getenv("WRK_DELAY_MS") or "0")
function delay()
  return d
end
