-- A token bucket shared by every process of the fleet, one Redis hash per (region, seller, operation).
-- Time comes from Redis TIME, so the clocks of the machines calling it do not matter.
--
-- KEYS[1]  the bucket's hash: tokens, ts (seconds, float), rate (tokens/s), burst (bucket size)
-- ARGV[1]  "acquire" | "set_rate" | "drain"
-- ARGV[2]  default rate, ARGV[3] burst (the bucket's size)
-- ARGV[4]  lowest and ARGV[5] highest rate believed: a rate outside them (in the hash or given) is
--          not used, the default is
-- ARGV[6]  acquire: the longest wait (s) the caller sleeps through; set_rate: the new rate
-- ARGV[7]  acquire: the longest wait (s) the caller may come back after, holding a reservation
--
-- acquire takes one token when it is there, or reserves the next one (tokens go negative): within
-- ARGV[6] seconds the caller sleeps the returned wait and calls, with no second round trip (granted
-- 1); within ARGV[7] it goes away and comes back after the wait to use its reserved token (granted
-- 2). Either way waiting callers are served in the order they asked, each at its own moment. A wait
-- beyond both takes nothing (granted 0). Returns {granted, wait seconds, tokens left, rate in use} as
-- strings (the rate lets a caller skip a set_rate that would change nothing).
--
-- Whatever the hash holds (a value written by an older version, by hand, or out of bounds), the script
-- reads it as a usable bucket or as none, and it computes everything before its first write: an error
-- half way must never leave a bucket that every later call fails on.

-- Reservations reach at most minutes ahead; a bucket owing more than this is damaged, not busy.
local MAX_DEBT_SECONDS = 86400
-- Redis refuses an expiry that overflows; a bucket needs no more than this to refill.
local MAX_TTL_SECONDS = 30 * 86400

local function finite(x)
  return x ~= nil and x == x and x > -math.huge and x < math.huge
end

local key = KEYS[1]
local mode = ARGV[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

local default_rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local min_rate = tonumber(ARGV[4])
local max_rate = tonumber(ARGV[5])
local function believable(rate)
  return finite(rate) and rate >= min_rate and rate <= max_rate
end

local state = redis.call('HMGET', key, 'tokens', 'ts', 'rate')
local rate = tonumber(state[3])
if not believable(rate) then
  rate = default_rate
end
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if not finite(tokens) or not finite(ts) or ts > now + MAX_DEBT_SECONDS then
  tokens = burst
  ts = now
end
tokens = math.max(math.min(tokens, burst), -rate * MAX_DEBT_SECONDS)
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
  if wait <= tonumber(ARGV[6]) then
    tokens = tokens - 1
    granted = 1
  elseif wait <= tonumber(ARGV[7] or '0') then
    tokens = tokens - 1
    granted = 2
  end
elseif mode == 'set_rate' then
  local new_rate = tonumber(ARGV[6])
  if believable(new_rate) then
    rate = new_rate
  end
elseif mode == 'drain' then
  -- Amazon said 429 although the bucket had tokens: nobody in the fleet calls until one refills.
  tokens = math.min(tokens, 0)
else
  return redis.error_reply('token_bucket: unknown mode ' .. tostring(mode))
end

-- A full bucket carries no information beyond the defaults: let the key expire once it would be full.
local ttl = math.ceil((burst - tokens) / rate) + 60
if not finite(ttl) or ttl > MAX_TTL_SECONDS then
  ttl = MAX_TTL_SECONDS
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(ts), 'rate', tostring(rate), 'burst', tostring(burst))
redis.call('EXPIRE', key, ttl)
return {granted, tostring(wait), tostring(tokens), tostring(rate)}
