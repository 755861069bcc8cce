-- Applies one event's update atomically and at most once. Interprets tailor_core::ops::WriteOp.
-- KEYS[1]: the event's applied marker; KEYS[2]: the offsets watermark hash; KEYS[3..]: keys the ops use.
-- ARGV[1]: marker TTL (s); ARGV[2]: watermark field ('' when the update has no bus position);
-- ARGV[3]: bus offset; ARGV[4..]: ops, each `code, key index, args...`.
-- Returns 0 applied, 1 duplicate event, 2 behind watermark.
if ARGV[2] ~= '' then
  local wm = redis.call('HGET', KEYS[2], ARGV[2])
  if wm and tonumber(wm) >= tonumber(ARGV[3]) then return 2 end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local i = 4
while i <= #ARGV do
  local op, k = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'hincr' then
    redis.call('HINCRBY', k, ARGV[i + 2], ARGV[i + 3]); i = i + 4
  elseif op == 'hincrf' then
    redis.call('HINCRBYFLOAT', k, ARGV[i + 2], ARGV[i + 3]); i = i + 4
  elseif op == 'hset' then
    redis.call('HSET', k, ARGV[i + 2], ARGV[i + 3]); i = i + 4
  elseif op == 'hmin' or op == 'hmax' then
    local cur = tonumber(redis.call('HGET', k, ARGV[i + 2]))
    local v = tonumber(ARGV[i + 3])
    if cur == nil or (op == 'hmin' and v < cur) or (op == 'hmax' and v > cur) then
      redis.call('HSET', k, ARGV[i + 2], ARGV[i + 3])
    end
    i = i + 4
  elseif op == 'lpushd' then
    redis.call('LREM', k, 0, ARGV[i + 2])
    redis.call('LPUSH', k, ARGV[i + 2])
    redis.call('LTRIM', k, 0, tonumber(ARGV[i + 3]) - 1); i = i + 4
  elseif op == 'zincr' then
    redis.call('ZINCRBY', k, ARGV[i + 3], ARGV[i + 2]); i = i + 4
  elseif op == 'expire' then
    redis.call('EXPIRE', k, ARGV[i + 2]); i = i + 3
  else
    return redis.error_reply('tailor apply: unknown op ' .. tostring(op))
  end
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
return 0
