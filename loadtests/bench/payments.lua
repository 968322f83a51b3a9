-- wrk script: POST /v1/payments from payer i to account i+1, round robin over the payers.
--
-- The benchmark prepends a generated header that defines, before this code runs:
--   nova_payers     = { {auth = "Bearer <token>", from = "acc_...", to = "acc_..."}, ... }
--   nova_run_prefix = "<random, fresh for every wrk invocation>"
--   nova_threads    = <wrk -t value>
-- so that every run has its own idempotency keys: a key reused across runs would be
-- answered as a replay (201, but no new payment) and inflate the figures.
--
-- Every response other than 201 is counted per status, and `done` prints two lines
-- the benchmark parses:
--   nova-statuses 201:12345,409:2
--   nova-non201 2

if nova_payers == nil or #nova_payers == 0 then
  error("payments.lua needs the generated header (run it through loadtests.bench.payments_bench)")
end

local threads = {}
local next_thread_id = 0

-- Runs in the main Lua state, once per thread, before any request.
function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

local counter = 0
local first_payer = 0
local key_prefix = ""
local headers = { ["Content-Type"] = "application/json" }
statuses = {}

-- Runs in each thread's own Lua state.
function init(args)
  local payers = #nova_payers
  -- Threads start at evenly spaced payers, so they do not queue on the same accounts.
  first_payer = math.floor(thread_id * payers / nova_threads)
  key_prefix = nova_run_prefix .. "-" .. thread_id .. "-"
  for _, payer in ipairs(nova_payers) do
    payer.body = string.format(
      '{"from_account":"%s","to_account":"%s","amount_minor":1,"currency":"USD"}', payer.from, payer.to
    )
  end
end

function request()
  local payer = nova_payers[(first_payer + counter) % #nova_payers + 1]
  counter = counter + 1
  headers["Authorization"] = payer.auth
  headers["Idempotency-Key"] = key_prefix .. counter
  return wrk.format("POST", "/v1/payments", headers, payer.body)
end

function response(status, _headers, _body)
  statuses[status] = (statuses[status] or 0) + 1
end

-- Runs in the main Lua state after every thread has stopped.
function done(_summary, _latency, _requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local parts, non201 = {}, 0
  for status, count in pairs(totals) do
    table.insert(parts, status .. ":" .. count)
    if status ~= 201 then
      non201 = non201 + count
    end
  end
  table.sort(parts)
  io.write("nova-statuses " .. table.concat(parts, ",") .. "\n")
  io.write("nova-non201 " .. non201 .. "\n")
end
