-- Applies one update atomically and at most once. Interprets tailor_core::ops::{Update, WriteOp}.
-- KEYS[1]: guard hash, KEYS[2]: marker, KEYS[3]: watermark hash (placeholders repeat another key of the
-- update when absent, so every key stays in the update's hash slot); KEYS[4..]: keys the ops use.
-- ARGV[1]: guard field ('' = no guard); ARGV[2]: '1' if the field must hold ARGV[3], '0' if it must be
-- absent; ARGV[4]: marker TTL in seconds ('' = no marker); ARGV[5]: watermark field ('' = no position);
-- ARGV[6]: bus offset; ARGV[7..]: ops, each `code, key index, args...`.
-- Returns 0 applied, 1 duplicate event, 2 behind watermark, 3 guard conflict.
if ARGV[5] ~= '' then
  local wm = redis.call('HGET', KEYS[3], ARGV[5])
  if wm and tonumber(wm) >= tonumber(ARGV[6]) then return 2 end
end
if ARGV[4] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if ARGV[1] ~= '' then
  local cur = redis.call('HGET', KEYS[1], ARGV[1])
  if ARGV[2] == '1' then
    if cur ~= ARGV[3] then return 3 end
  elseif cur then
    return 3
  end
end
local i = 7
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
  elseif op == 'zset' then
    redis.call('ZADD', k, ARGV[i + 3], ARGV[i + 2]); i = i + 4
  elseif op == 'zrem' then
    redis.call('ZREM', k, ARGV[i + 2]); i = i + 3
  elseif op == 'sadd' then
    redis.call('SADD', k, ARGV[i + 2]); i = i + 3
  elseif op == 'srem' then
    redis.call('SREM', k, ARGV[i + 2]); i = i + 3
  elseif op == 'put' then
    if ARGV[i + 3] == '' then
      redis.call('SET', k, ARGV[i + 2])
    else
      redis.call('SET', k, ARGV[i + 2], 'EX', ARGV[i + 3])
    end
    i = i + 4
  elseif op == 'del' then
    redis.call('DEL', k); i = i + 2
  elseif op == 'hdel' then
    redis.call('HDEL', k, ARGV[i + 2]); i = i + 3
  elseif op == 'zkeep' then
    redis.call('ZREMRANGEBYRANK', k, 0, -(tonumber(ARGV[i + 2]) + 1)); i = i + 3
  elseif op == 'expire' then
    redis.call('EXPIRE', k, ARGV[i + 2]); i = i + 3
  else
    return redis.error_reply('tailor apply: unknown op ' .. tostring(op))
  end
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[5], ARGV[6]) end
return 0
