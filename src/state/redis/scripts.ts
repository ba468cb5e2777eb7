/**
 * Lua scripts: every admission decision in Redis is one script, so check-and-update is atomic
 * (never get-then-set across the network). They mirror src/state/algorithms.ts and quota-logic.ts.
 * "now" comes from the caller when a clock is injected, else from Redis TIME so all replicas
 * share one clock.
 */
import { lua } from './client.js';

const NOW = `
local function now_ms(arg)
  local n = tonumber(arg)
  if n then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
`;

/** KEYS[1]=bucket hash. ARGV: rate/s, burst, cost, now|''. -> {allowed, remaining, retryMs, resetMs} */
export const BUCKET = lua(`${NOW}
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = now_ms(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = burst
local ts = now
if h[1] then
  local prev = tonumber(h[2])
  local elapsed = now - prev
  if elapsed < 0 then elapsed = 0 end
  if prev > ts then ts = prev end
  tokens = math.min(burst, tonumber(h[1]) + elapsed * rate / 1000)
end
local allowed = 0
local retry = 0
if cost <= tokens then
  allowed = 1
  tokens = tokens - cost
else
  local need = math.min(cost, burst) - tokens
  retry = math.max(1, math.ceil(need * 1000 / rate))
end
local reset = math.ceil((burst - tokens) * 1000 / rate)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
-- Forgotten once full again (burst / rate s), but at most ~317 years: PEXPIRE takes an integer,
-- and Lua writes a number from 1e14 up in exponent form (limits stored unbounded by older versions).
redis.call('PEXPIRE', KEYS[1], math.min(1e13, math.ceil(burst * 1000 / rate)) + 1000)
return {allowed, math.floor(tokens), retry, reset}
`);

/**
 * Several buckets, all or none (algorithms.ts bucketsStep): each is charged when every one has its
 * cost, else none is and nothing is written. KEYS[i]=bucket hashes, all of one tenant (one hash
 * tag: one cluster slot). ARGV: now|'', then per bucket rate/s, burst, cost.
 * -> {allowed, then per bucket: had the cost, remaining, retryMs, resetMs}
 */
export const BUCKETS = lua(`${NOW}
local now = now_ms(ARGV[1])
local n = #KEYS
local tokens = {}
local stamps = {}
local all = 1
for i = 1, n do
  local rate = tonumber(ARGV[2 + (i - 1) * 3])
  local burst = tonumber(ARGV[3 + (i - 1) * 3])
  local cost = tonumber(ARGV[4 + (i - 1) * 3])
  local h = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local t = burst
  local ts = now
  if h[1] then
    local prev = tonumber(h[2])
    local elapsed = now - prev
    if elapsed < 0 then elapsed = 0 end
    if prev > ts then ts = prev end
    t = math.min(burst, tonumber(h[1]) + elapsed * rate / 1000)
  end
  tokens[i] = t
  stamps[i] = ts
  if cost > t then all = 0 end
end
local out = {all}
for i = 1, n do
  local rate = tonumber(ARGV[2 + (i - 1) * 3])
  local burst = tonumber(ARGV[3 + (i - 1) * 3])
  local cost = tonumber(ARGV[4 + (i - 1) * 3])
  local t = tokens[i]
  local room = 0
  local retry = 0
  if cost <= t then
    room = 1
  else
    retry = math.max(1, math.ceil((math.min(cost, burst) - t) * 1000 / rate))
  end
  if all == 1 then
    t = t - cost
    redis.call('HSET', KEYS[i], 'tokens', string.format('%.17g', t), 'ts', string.format('%.17g', stamps[i]))
    redis.call('PEXPIRE', KEYS[i], math.min(1e13, math.ceil(burst * 1000 / rate)) + 1000)
  end
  out[#out + 1] = room
  out[#out + 1] = math.floor(t)
  out[#out + 1] = retry
  out[#out + 1] = math.ceil((burst - t) * 1000 / rate)
end
return out
`);

/**
 * KEYS[1]=current window, KEYS[2]=previous window. ARGV: now, windowMs, limit, cost, windowStart,
 * minCost|'' (algorithms.ts windowStep). -> {allowed, used, remaining, retryMs, resetMs, charged}
 */
export const WINDOW = lua(`
local now = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local start = tonumber(ARGV[5])
local mincost = tonumber(ARGV[6])
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local used = prev * (1 - (now - start) / win) + cur
local charge = cost
local allowed
if mincost == nil or cost == 0 then
  if cost == 0 then allowed = used < limit else allowed = used + cost <= limit end
else
  charge = math.min(cost, math.floor(limit - used))
  allowed = charge >= mincost and charge > 0
end
local need = cost
if mincost ~= nil then need = math.min(cost, mincost) end
local retry = 0
if not allowed then
  if cur + need <= limit and prev > 0 then
    retry = start + (1 - (limit - cur - need) / prev) * win - now
  elseif need <= limit and cur > 0 then
    retry = start + win + (1 - (limit - need) / cur) * win - now
  else
    retry = start + 2 * win - now
  end
  retry = math.max(1, math.ceil(retry))
end
local after = used
local c = cur
if allowed then
  after = used + charge
  c = cur + charge
  if charge ~= 0 then
    redis.call('INCRBYFLOAT', KEYS[1], charge)
    redis.call('PEXPIRE', KEYS[1], 2 * win + 1000)
  end
else
  charge = 0
end
local reset
if c > 0 then reset = math.ceil(start + 2 * win - now) else reset = math.ceil(start + win - now) end
return {allowed and 1 or 0, string.format('%.17g', after), math.max(0, math.floor(limit - after)), retry, reset, string.format('%.17g', charge)}
`);

/**
 * KEYS[1]=window key. ARGV: delta, createTtlMs|''. Clamped at 0; a vanished window is left alone,
 * unless createTtlMs is given (a degraded charge's settle: its usage was never written), which
 * creates it with that TTL.
 */
export const WINDOW_SETTLE = lua(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  local ttl = tonumber(ARGV[2])
  if not ttl then return 0 end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  return 1
end
local v = tonumber(redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]))
if v < 0 then redis.call('SET', KEYS[1], '0', 'KEEPTTL') end
return 1
`);

/** KEYS[1]=lease zset. ARGV: now|'', max, leaseMs, id. -> {acquired, current, expiresAt} */
export const ACQUIRE = lua(`${NOW}
local now = now_ms(ARGV[1])
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= max then return {0, n, '0'} end
local exp = now + lease
redis.call('ZADD', KEYS[1], exp, ARGV[4])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < lease + 1000 then redis.call('PEXPIRE', KEYS[1], lease + 1000) end
return {1, n + 1, string.format('%.17g', exp)}
`);

/** KEYS[1]=lease zset. ARGV: now|'', leaseMs, id. -> {renewed, expiresAt} */
export const RENEW = lua(`${NOW}
local now = now_ms(ARGV[1])
local lease = tonumber(ARGV[2])
local s = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not s or tonumber(s) <= now then return {0, '0'} end
local exp = now + lease
redis.call('ZADD', KEYS[1], 'XX', exp, ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < lease + 1000 then redis.call('PEXPIRE', KEYS[1], lease + 1000) end
return {1, string.format('%.17g', exp)}
`);

/** KEYS[1]=lease zset. ARGV: now|''. -> live leases */
export const INFLIGHT = lua(`${NOW}
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.17g', now_ms(ARGV[1])), '+inf')
`);

/**
 * Quota helpers. A reservation is a hash {state, tokens, requests, tallies} where tallies are the
 * (scope, window) hash keys it holds budget in, newline-separated; the per-tenant zset "hold"
 * indexes held reservations by expiry so expired holds are returned lazily on the next call.
 * Tally hashes: ut/ur = used tokens/requests, rt/rr = reserved (held) tokens/requests.
 */
const QUOTA_LIB = `
local function unhold(rkey)
  local f = redis.call('HMGET', rkey, 'state', 'tokens', 'requests', 'tallies')
  if f[1] ~= 'held' then return false end
  local t = tonumber(f[2])
  local rq = tonumber(f[3])
  for k in string.gmatch(f[4], '[^\\n]+') do
    redis.call('HINCRBY', k, 'rt', -t)
    redis.call('HINCRBY', k, 'rr', -rq)
  end
  return true
end
local function purge(hold, rprefix, now)
  local ids = redis.call('ZRANGEBYSCORE', hold, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(ids) do
    local rkey = rprefix .. id
    if unhold(rkey) then redis.call('HSET', rkey, 'state', 'expired') end
    redis.call('ZREM', hold, id)
  end
end
local function extend(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl < ms then redis.call('PEXPIRE', key, ms) end
end
`;

/**
 * Reserve up to `tokens`, at least `minTokens` (quota-logic.ts planReservation, line for line).
 * KEYS[1]=hold zset, KEYS[2]=reservation hash, KEYS[3..]=tallies (scope x window).
 * ARGV: now, tokens, minTokens, requests, expiresAt, reservationKeepMs, reservationPrefix, id, owner,
 *       then per tally: tokenLimit|'', requestLimit|'', tallyExpireAt.
 * -> {1, tokensHeld} or {0, tallyIndex, metric(1 tokens, 2 requests), limit, used, held, needed}
 */
export const QUOTA_RESERVE = lua(`${QUOTA_LIB}
local hold = KEYS[1]
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local mint = tonumber(ARGV[3])
local reqs = tonumber(ARGV[4])
purge(hold, ARGV[7], now)
local n = #KEYS - 2
local grant = tokens
for i = 1, n do
  local base = 10 + (i - 1) * 3
  local lt = tonumber(ARGV[base])
  local lr = tonumber(ARGV[base + 1])
  if lt or lr then
    local v = redis.call('HMGET', KEYS[i + 2], 'ut', 'ur', 'rt', 'rr')
    local ut = tonumber(v[1] or '0')
    local ur = tonumber(v[2] or '0')
    local rt = tonumber(v[3] or '0')
    local rr = tonumber(v[4] or '0')
    if lt then
      local room = lt - ut - rt
      if room < mint or (mint == 0 and room <= 0) then return {0, i, 1, lt, ut, rt, mint} end
      if room < grant then grant = room end
    end
    if lr and (ur + rr + reqs > lr or (reqs == 0 and ur + rr >= lr)) then return {0, i, 2, lr, ur, rr, reqs} end
  end
end
if grant < 0 then grant = 0 end
for i = 1, n do
  local k = KEYS[i + 2]
  redis.call('HINCRBY', k, 'rt', grant)
  redis.call('HINCRBY', k, 'rr', reqs)
  redis.call('PEXPIREAT', k, ARGV[10 + (i - 1) * 3 + 2])
end
redis.call('HSET', KEYS[2], 'state', 'held', 'tokens', grant, 'requests', reqs, 'owner', ARGV[9], 'tallies', table.concat(KEYS, '\\n', 3))
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', hold, ARGV[5], ARGV[8])
extend(hold, tonumber(ARGV[6]))
return {1, grant}
`);

/**
 * KEYS[1]=hold zset, KEYS[2]=reservation hash, KEYS[3..]=tallies from the handle.
 * ARGV: id, actualTokens, actualRequests, keepMs, then per tally: tallyExpireAt.
 * Idempotent: a settled reservation is not counted twice; an expired one still records usage.
 */
export const QUOTA_COMMIT = lua(`${QUOTA_LIB}
local st = redis.call('HGET', KEYS[2], 'state')
if st == 'settled' then return 0 end
if st == 'held' then
  unhold(KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
for i = 3, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'ut', ARGV[2])
  redis.call('HINCRBY', KEYS[i], 'ur', ARGV[3])
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIREAT', KEYS[i], ARGV[5 + i - 3]) end
end
-- Keep only a small marker (repeat commits are ignored until it expires).
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'state', 'settled')
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
`);

/** KEYS[1]=hold zset, KEYS[2]=reservation hash. ARGV: id, keepMs. */
export const QUOTA_RELEASE = lua(`${QUOTA_LIB}
if unhold(KEYS[2]) then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'state', 'settled')
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
`);

/**
 * Renew leases. KEYS[1]=hold zset, KEYS[2..]=reservation hashes.
 * ARGV: expiresAt, reservationKeepMs, then the ids (same order as the hashes). Only reservations
 * still held (and indexed in the hold zset) are extended. -> how many
 */
export const QUOTA_RENEW = lua(`
local n = 0
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  if redis.call('HGET', KEYS[i], 'state') == 'held' and redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], id)
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    n = n + 1
  end
end
if n > 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return n
`);

/**
 * Hold again reservations whose lease lapsed (state 'expired': purge gave their hold back) while
 * their request runs. KEYS[1]=hold zset, KEYS[2..]=reservation hashes. ARGV: expiresAt,
 * reservationKeepMs, then the ids (same order as the hashes). Their tallies (same hash tag) get
 * their tokens and requests back whatever the limits. -> the ids held again
 */
export const QUOTA_REHOLD = lua(`
local again = {}
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  local f = redis.call('HMGET', KEYS[i], 'state', 'tokens', 'requests', 'tallies')
  if f[1] == 'expired' then
    local t = tonumber(f[2])
    local rq = tonumber(f[3])
    for k in string.gmatch(f[4], '[^\\n]+') do
      redis.call('HINCRBY', k, 'rt', t)
      redis.call('HINCRBY', k, 'rr', rq)
    end
    redis.call('HSET', KEYS[i], 'state', 'held')
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    again[#again + 1] = id
  end
end
if #again > 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return again
`);

/** KEYS[1]=hold zset, KEYS[2]=tally. ARGV: now, reservationPrefix. -> {ut, ur, rt, rr} */
export const QUOTA_USAGE = lua(`${QUOTA_LIB}
purge(KEYS[1], ARGV[2], tonumber(ARGV[1]))
local v = redis.call('HMGET', KEYS[2], 'ut', 'ur', 'rt', 'rr')
return {tonumber(v[1] or '0'), tonumber(v[2] or '0'), tonumber(v[3] or '0'), tonumber(v[4] or '0')}
`);

/**
 * Move settled usage between scopes. KEYS: pairs (from tally, to tally), one per window.
 * ARGV: per pair, the `to` tally's expireAt. The used fields (ut, ur) of each `from` tally are added
 * to its `to` tally and removed from `from`; the held fields (rt, rr) stay, for the reservations
 * that name `from` to give back. -> {tokens, requests} per pair
 */
export const QUOTA_MOVE = lua(`
local out = {}
for i = 1, #KEYS, 2 do
  local v = redis.call('HMGET', KEYS[i], 'ut', 'ur')
  local ut = tonumber(v[1] or '0')
  local ur = tonumber(v[2] or '0')
  if ut ~= 0 or ur ~= 0 then
    redis.call('HINCRBY', KEYS[i + 1], 'ut', ut)
    redis.call('HINCRBY', KEYS[i + 1], 'ur', ur)
    if redis.call('PTTL', KEYS[i + 1]) < 0 then redis.call('PEXPIREAT', KEYS[i + 1], ARGV[(i + 1) / 2]) end
    redis.call('HDEL', KEYS[i], 'ut', 'ur')
  end
  out[#out + 1] = ut
  out[#out + 1] = ur
end
return out
`);

/**
 * Raise settled usage to at least a target. KEYS: tallies (one per window). ARGV: per tally, the
 * target tokens, the target requests and the tally's expireAt. The used fields (ut, ur) below
 * their target are raised to it; none is lowered. -> {tokens, requests} added per tally
 */
export const QUOTA_RAISE = lua(`
local out = {}
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'ut', 'ur')
  local ut = tonumber(v[1] or '0')
  local ur = tonumber(v[2] or '0')
  local addt = math.max(0, tonumber(ARGV[3 * i - 2]) - ut)
  local addr = math.max(0, tonumber(ARGV[3 * i - 1]) - ur)
  if addt > 0 then redis.call('HINCRBY', KEYS[i], 'ut', addt) end
  if addr > 0 then redis.call('HINCRBY', KEYS[i], 'ur', addr) end
  if (addt > 0 or addr > 0) and redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIREAT', KEYS[i], ARGV[3 * i]) end
  out[#out + 1] = addt
  out[#out + 1] = addr
end
return out
`);

/** KEYS[1]=version counter. ARGV: channel, payload. Bump then publish, in one step. */
export const INVALIDATE = lua(`
local v = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return v
`);
