-- Workload 8: holds. Each thread places holds on wallets spread over the range and finishes the ones it placed:
-- a third captured (half of them into another wallet), the rest voided. Every write is keyed.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local r = require("report")

setup, init, done = r.setup, r.init, r.done

-- Holds this thread placed and has not finished yet (ids from the 201 answers).
local pending = {}

function request()
   if #pending > 0 and math.random(2) == 1 then
      local hold = table.remove(pending, 1)
      local roll = math.random(6)
      if roll == 1 then
         return wrk.format("POST", "/wallet/holds/" .. hold.id .. "/capture", r.keyed_headers(), "{}")
      elseif roll == 2 then
         local to = r.wallet()
         if to == hold.wallet then to = (to == r.first) and to + 1 or r.first end
         local body = string.format('{"to_id": %d}', to)
         return wrk.format("POST", "/wallet/holds/" .. hold.id .. "/capture", r.keyed_headers(), body)
      end
      return wrk.format("POST", "/wallet/holds/" .. hold.id .. "/void", r.keyed_headers(), "{}")
   end
   local body = string.format('{"wallet_id": %d, "amount": "%s"}', r.wallet(), r.amount)
   return wrk.format("POST", "/wallet/holds", r.keyed_headers(), body)
end

function response(status, headers, body)
   if status == 201 then
      local id = string.match(body, '"id"%s*:%s*"(%d+)"')
      local wallet = tonumber(string.match(body, '"wallet_id"%s*:%s*"(%d+)"'))
      if id and wallet and #pending < 1000 then table.insert(pending, { id = id, wallet = wallet }) end
   end
end
