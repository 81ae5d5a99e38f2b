-- An application-wide request limit of one report type, shared by every seller of the fleet, with turns.
-- Time comes from Redis TIME.
--
-- KEYS[1]  the limit's hash: tokens, ts
-- KEYS[2]  the waiting sellers: a sorted set, score = when each first asked (first come, first served)
-- KEYS[3]  when each waiting seller last asked: a hash (a seller gone for stale_after seconds loses its turn)
-- KEYS[4]  today's count of requests (UTC day)
-- ARGV[1]  seller, ARGV[2] requests per ARGV[3] seconds, ARGV[4] daily maximum (0: none),
-- ARGV[5]  stale_after seconds, ARGV[6] seconds left in the UTC day
--
-- Only the seller at the head of the line may take a token: whoever asks, the sellers are served in
-- the order they first asked, one turn each, so none starves. Returns {granted, wait seconds, position}.
--
-- Whatever the keys hold (a value written by an older version or by hand), the script reads it as a
-- usable state or as none, and computes its expiries before its first write: an error half way must
-- never leave keys that every later call fails on.

-- Redis refuses an expiry that overflows; no limit needs its state kept longer than this.
local MAX_TTL_SECONDS = 30 * 86400

local function finite(x)
  return x ~= nil and x == x and x > -math.huge and x < math.huge
end

local function ttl_of(seconds)
  local ttl = math.ceil(seconds * 2) + 60
  if not finite(ttl) or ttl > MAX_TTL_SECONDS then
    return MAX_TTL_SECONDS
  end
  return math.max(ttl, 60)
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local seller = ARGV[1]
local burst = tonumber(ARGV[2])
local rate = burst / tonumber(ARGV[3])
local daily = tonumber(ARGV[4])
local stale_after = tonumber(ARGV[5])
local limit_ttl = ttl_of(tonumber(ARGV[3]))
local line_ttl = ttl_of(stale_after)

local used = tonumber(redis.call('GET', KEYS[4]) or '0')
if not finite(used) or used ~= math.floor(used) then
  -- Not a count INCR could go on from: today's count starts again.
  redis.call('DEL', KEYS[4])
  used = 0
end

redis.call('ZADD', KEYS[2], 'NX', now, seller)
redis.call('HSET', KEYS[3], seller, tostring(now))
-- Drop sellers at the head that stopped asking (their task died): they must not hold the line.
while true do
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if head == nil or head == seller then break end
  local seen = tonumber(redis.call('HGET', KEYS[3], head) or '0')
  if finite(seen) and now - seen <= stale_after then break end
  redis.call('ZREM', KEYS[2], head)
  redis.call('HDEL', KEYS[3], head)
end

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if not finite(tokens) or not finite(ts) or ts > now + 86400 then
  tokens = burst
  ts = now
end
tokens = math.max(math.min(tokens, burst), 0)
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local position = redis.call('ZRANK', KEYS[2], seller)

local granted = 0
local wait = 0
if daily > 0 and used >= daily then
  wait = tonumber(ARGV[6])
elseif position == 0 and tokens >= 1 then
  tokens = tokens - 1
  granted = 1
  redis.call('ZREM', KEYS[2], seller)
  redis.call('HDEL', KEYS[3], seller)
  redis.call('INCR', KEYS[4])
  redis.call('EXPIRE', KEYS[4], 2 * 86400)
else
  -- This seller's turn comes after the ones ahead of it have had theirs.
  wait = (position + 1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', KEYS[1], limit_ttl)
redis.call('EXPIRE', KEYS[2], line_ttl)
redis.call('EXPIRE', KEYS[3], line_ttl)
return {granted, tostring(wait), position}
