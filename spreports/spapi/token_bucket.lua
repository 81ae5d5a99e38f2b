-- A token bucket shared by every process of the fleet, one Redis hash per (region, seller, operation).
-- Time comes from Redis TIME, so the clocks of the machines calling it do not matter.
--
-- KEYS[1]  the bucket's hash: tokens, ts (seconds, float), rate (tokens/s), burst (bucket size)
-- ARGV[1]  "acquire" | "set_rate" | "drain"
-- ARGV[2]  default rate, ARGV[3] default burst: used while the hash holds none
-- ARGV[4]  acquire: the longest wait (s) the caller sleeps through; set_rate: the new rate
-- ARGV[5]  acquire: the longest wait (s) the caller may come back after, holding a reservation
--
-- acquire takes one token when it is there, or reserves the next one (tokens go negative): within
-- ARGV[4] seconds the caller sleeps the returned wait and calls, with no second round trip (granted
-- 1); within ARGV[5] it goes away and comes back after the wait to use its reserved token (granted
-- 2). Either way waiting callers are served in the order they asked, each at its own moment. A wait
-- beyond both takes nothing (granted 0). Returns {granted, wait seconds, tokens left} as strings.

local key = KEYS[1]
local mode = ARGV[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

local state = redis.call('HMGET', key, 'tokens', 'ts', 'rate', 'burst')
local rate = tonumber(state[3]) or tonumber(ARGV[2])
local burst = tonumber(state[4]) or tonumber(ARGV[3])
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end

local granted = 0
local wait = 0
if mode == 'acquire' then
  if tokens < 1 then
    wait = (1 - tokens) / rate
  end
  if wait <= tonumber(ARGV[4]) then
    tokens = tokens - 1
    granted = 1
  elseif wait <= tonumber(ARGV[5] or '0') then
    tokens = tokens - 1
    granted = 2
  end
elseif mode == 'set_rate' then
  local new_rate = tonumber(ARGV[4])
  if new_rate and new_rate > 0 then
    rate = new_rate
  end
elseif mode == 'drain' then
  -- Amazon said 429 although the bucket had tokens: nobody in the fleet calls until one refills.
  tokens = math.min(tokens, 0)
else
  return redis.error_reply('token_bucket: unknown mode ' .. tostring(mode))
end

redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(ts), 'rate', tostring(rate), 'burst', tostring(burst))
-- A full bucket carries no information beyond the defaults: let the key expire once it would be full.
redis.call('EXPIRE', key, math.ceil((burst - tokens) / rate) + 60)
return {granted, tostring(wait), tostring(tokens)}
