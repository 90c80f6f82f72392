-- wrk script: POSTs keepalives round-robin over the device tokens in $DVIC_BENCH_TOKENS (one a line).
local tokens = {}
for line in io.lines(os.getenv("DVIC_BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local body = '{"status":"ok","uptime_s":1234,"rssi":-61,"free_heap":180000,"numbers":{"temp_c":21.5}}'
local headers = { ["Content-Type"] = "application/json" }
local i = math.random(#tokens)

request = function()
  i = i % #tokens + 1
  return wrk.format("POST", "/api/v1/devices/" .. tokens[i] .. "/keepalive", headers, body)
end
