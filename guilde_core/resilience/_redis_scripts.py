"""Lua twins of :class:`~._machine.Machine` for the Redis store.

Each script is one atomic transition of one breaker, with time from Redis ``TIME`` (clock
skew between hosts cannot matter), the configuration passed in ARGV on every call (so a
settings change applies at once — nothing is frozen in Redis, unlike purgatory's
registration), and the transition published from inside the script (exactly once).

Keys (``{p}`` = the registry prefix). The first and last two reuse purgatory 3.0.1's layout
(``cbr::<name>`` JSON ``{name, threshold, ttl, state, opened_at}`` with its state names
``closed|opened|half-opened``, and ``cbr::<name>::failure_count``) so purgatory-based
tooling and dashboards can still read a breaker; the rest is ours:

====================================  ============================================
``{p}cbr::<name>::state``             hash: state, failures, successes, opened_at,
                                      forced, disabled, last_failure_at,
                                      last_success_at, last_error (authoritative)
``{p}cbr::<name>::trials``            zset of half-open trial tokens, score = lease end
``{p}cbr::<name>``                    purgatory-compatible JSON mirror
``{p}cbr::<name>::failure_count``     purgatory-compatible failure count mirror
``{p}cbr::__names__``                 set of every breaker name (all processes)
====================================  ============================================

Channel ``{p}cbr::__transitions__``: JSON ``{event: "state_changed", name, from_state,
to_state, at, reason, manual, origin, forced, disabled}`` (``state_changed`` is purgatory's hook event name).

Every script returns the same 12-item reply (numbers as strings: Lua would truncate floats)::

    admitted, trial, state, failures, successes, opened_at, now, forced, disabled,
    change_from, change_to, change_reason
"""

from __future__ import annotations

# KEYS: 1 state hash, 2 trials zset, 3 purgatory json, 4 purgatory failure count, 5 names set
# ARGV: 1 name, 2 failure_threshold, 3 recovery_timeout, 4 half_open_requests,
#       5 success_threshold, 6 channel, 7 origin, 8 key ttl (s), 9.. script-specific
PRELUDE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local name = ARGV[1]
local fth = tonumber(ARGV[2])
local rto = tonumber(ARGV[3])
local hor = tonumber(ARGV[4])
local sth = tonumber(ARGV[5])
local channel = ARGV[6]
local origin = ARGV[7]
local ttl = tonumber(ARGV[8])
local function num(v) if v then return tonumber(v) end return nil end
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'successes', 'opened_at',
  'forced', 'disabled', 'last_failure_at', 'last_success_at', 'last_error')
local state = h[1] or 'closed'
local failures = num(h[2]) or 0
local successes = num(h[3]) or 0
local opened_at = num(h[4])
local forced = h[5] or ''
local disabled = num(h[6]) or 0
local last_failure_at = h[7] or ''
local last_success_at = h[8] or ''
local last_error = h[9] or ''
local admitted, trial = 1, 0
local cfrom, cto, creason = '', '', ''
local PSTATE = {closed = 'closed', open = 'opened', ['half-open'] = 'half-opened'}

local function transition(to, reason, manual)
  cfrom, cto, creason = state, to, reason
  state = to
  redis.call('SET', KEYS[3], cjson.encode({name = name, threshold = fth, ttl = rto,
    state = PSTATE[to], opened_at = opened_at or cjson.null}), 'EX', ttl)
  redis.call('PUBLISH', channel, cjson.encode({event = 'state_changed', name = name,
    from_state = cfrom, to_state = to, at = now, reason = reason, manual = manual,
    origin = origin, forced = forced, disabled = disabled}))
end

local function open_now()
  opened_at = now
  successes = 0
  redis.call('DEL', KEYS[2])
end

local function close_now()
  failures = 0
  successes = 0
  opened_at = nil
  redis.call('DEL', KEYS[2])
end

local function save()
  redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'successes', successes,
    'opened_at', opened_at and tostring(opened_at) or '', 'forced', forced,
    'disabled', disabled, 'last_failure_at', last_failure_at,
    'last_success_at', last_success_at, 'last_error', last_error)
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('SET', KEYS[4], failures, 'EX', ttl)
  redis.call('SADD', KEYS[5], name)
  redis.call('EXPIRE', KEYS[5], ttl)
end

local function reply()
  return {tostring(admitted), tostring(trial), state, tostring(failures), tostring(successes),
    opened_at and tostring(opened_at) or '', tostring(now), forced, tostring(disabled),
    cfrom, cto, creason}
end
"""

# ARGV 9: trial token, 10: lease seconds
ACQUIRE = (
    PRELUDE
    + r"""
local changed = false
if disabled == 0 and state ~= 'closed' then
  if state == 'open' then
    if forced == 'open' or opened_at == nil or now < opened_at + rto then
      admitted = 0
    else
      successes = 0
      redis.call('DEL', KEYS[2])
      transition('half-open', 'recovery timeout of ' .. ARGV[3] .. 's elapsed', false)
      changed = true
    end
  end
  if state == 'half-open' then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[2]) < hor then
      redis.call('ZADD', KEYS[2], now + tonumber(ARGV[10]), ARGV[9])
      redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[10])) + 1)
      trial = 1
    else
      admitted = 0
    end
  end
end
if changed then save() end
return reply()
"""
)

# ARGV 9: outcome s|f|i, 10: trial token ('' when not a trial), 11: error text
RECORD = (
    PRELUDE
    + r"""
local outcome = ARGV[9]
local is_trial = 0
if ARGV[10] ~= '' then is_trial = redis.call('ZREM', KEYS[2], ARGV[10]) end
if disabled == 0 then
  if outcome == 's' then
    last_success_at = tostring(now)
    if state == 'closed' then
      failures = 0
    elseif state == 'half-open' and is_trial == 1 then
      successes = successes + 1
      if successes >= sth then
        local n = successes
        close_now()
        transition('closed', n .. ' successful trial call(s)', false)
      end
    end
  elseif outcome == 'f' then
    last_failure_at = tostring(now)
    last_error = ARGV[11]
    if state == 'closed' then
      failures = failures + 1
      if failures >= fth and forced ~= 'closed' then
        open_now()
        transition('open', failures .. ' failure(s): ' .. ARGV[11], false)
      end
    elseif state == 'half-open' and is_trial == 1 then
      failures = failures + 1
      open_now()
      transition('open', 'trial call failed: ' .. ARGV[11], false)
    end
  end
end
if outcome ~= 'i' then save() end
return reply()
"""
)

# ARGV 9: action force_open|force_close|reset|disable, 10: reason
CONTROL = (
    PRELUDE
    + r"""
local action = ARGV[9]
local to = 'closed'
if action == 'force_open' then
  open_now()
  forced = 'open'
  disabled = 0
  to = 'open'
else
  close_now()
  disabled = 0
  forced = ''
  if action == 'force_close' then forced = 'closed' end
  if action == 'disable' then disabled = 1 end
end
transition(to, ARGV[10], true)
save()
return reply()
"""
)

# ARGV 9: mode absent|overwrite, 10 state, 11 failures, 12 successes, 13 opened_at (Redis
# time, '' for none), 14 forced, 15 disabled, 16 last_failure_at, 17 last_success_at,
# 18 last_error — after an outage: restore what Redis lost, or push what changed locally.
SYNC = (
    PRELUDE
    + r"""
if ARGV[9] == 'overwrite' or redis.call('EXISTS', KEYS[1]) == 0 then
  state = ARGV[10]
  failures = tonumber(ARGV[11])
  successes = tonumber(ARGV[12])
  opened_at = num(ARGV[13] ~= '' and ARGV[13] or nil)
  forced = ARGV[14]
  disabled = tonumber(ARGV[15])
  last_failure_at = ARGV[16]
  last_success_at = ARGV[17]
  last_error = ARGV[18]
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[3], cjson.encode({name = name, threshold = fth, ttl = rto,
    state = PSTATE[state], opened_at = opened_at or cjson.null}), 'EX', ttl)
  save()
end
return reply()
"""
)
