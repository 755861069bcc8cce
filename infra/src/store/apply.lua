-- Applies one update atomically and at most once. Interprets tailor_core::ops::{Update, WriteOp}.
-- KEYS[1]: guard hash, KEYS[2]: marker, KEYS[3]: watermark hash (placeholders repeat another key of the
-- update when absent, so every key stays in the update's hash slot); KEYS[4..]: keys the ops use.
-- ARGV[1]: guard field ('' = no guard); ARGV[2]: '1' if the field must hold ARGV[3], '0' if it must be
-- absent; ARGV[4]: marker TTL in seconds ('' = no marker); ARGV[5]: watermark field ('' = no position);
-- ARGV[6]: bus offset; ARGV[7]: the first offset of a summed update ('' = not summed); ARGV[8]: n, the
-- number of runs of a merged update (0: one run, every op from ARGV[6]); ARGV[9..8+2n]: each run's
-- offset and op count; then the ops, each `code, key index, args...`.
-- A run at or below the watermark is skipped (its ops are read, not executed); a summed update is
-- refused (3) when the watermark is at or above its first offset.
-- Returns 0 applied, 1 duplicate event, 2 behind watermark, 3 guard conflict or summed update cut.
local wm = nil
if ARGV[5] ~= '' then
  wm = tonumber(redis.call('HGET', KEYS[3], ARGV[5]))
  if wm and wm >= tonumber(ARGV[6]) then return 2 end
  if wm and ARGV[7] ~= '' and wm >= tonumber(ARGV[7]) then return 3 end
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
local runs = tonumber(ARGV[8])
local i = 9 + 2 * runs
local n = #ARGV
local call = redis.call
-- The current run: its index, the ops left in it and whether it is applied. The ops written most
-- come first.
local run, left, live = 0, -1, true
while i <= n do
  while left <= 0 and run < runs do
    run = run + 1
    left = tonumber(ARGV[8 + 2 * run])
    live = not wm or tonumber(ARGV[7 + 2 * run]) > wm
  end
  left = left - 1
  local op, k = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'zincr' then
    if live then call('ZINCRBY', k, ARGV[i + 3], ARGV[i + 2]) end; i = i + 4
  elseif op == 'zset' then
    if live then call('ZADD', k, ARGV[i + 3], ARGV[i + 2]) end; i = i + 4
  elseif op == 'zkeep' then
    if live then call('ZREMRANGEBYRANK', k, 0, -(tonumber(ARGV[i + 2]) + 1)) end; i = i + 3
  elseif op == 'hincr' then
    if live then call('HINCRBY', k, ARGV[i + 2], ARGV[i + 3]) end; i = i + 4
  elseif op == 'expire' then
    if live then call('EXPIRE', k, ARGV[i + 2]) end; i = i + 3
  elseif op == 'hset' then
    if live then call('HSET', k, ARGV[i + 2], ARGV[i + 3]) end; i = i + 4
  elseif op == 'hincrf' then
    if live then call('HINCRBYFLOAT', k, ARGV[i + 2], ARGV[i + 3]) end; i = i + 4
  elseif op == 'hmin' or op == 'hmax' then
    if live then
      local cur = tonumber(call('HGET', k, ARGV[i + 2]))
      local v = tonumber(ARGV[i + 3])
      if cur == nil or (op == 'hmin' and v < cur) or (op == 'hmax' and v > cur) then
        call('HSET', k, ARGV[i + 2], ARGV[i + 3])
      end
    end
    i = i + 4
  elseif op == 'lpushd' then
    if live then
      call('LREM', k, 0, ARGV[i + 2])
      call('LPUSH', k, ARGV[i + 2])
      call('LTRIM', k, 0, tonumber(ARGV[i + 3]) - 1)
    end
    i = i + 4
  elseif op == 'zrem' then
    if live then call('ZREM', k, ARGV[i + 2]) end; i = i + 3
  elseif op == 'sadd' then
    if live then call('SADD', k, ARGV[i + 2]) end; i = i + 3
  elseif op == 'srem' then
    if live then call('SREM', k, ARGV[i + 2]) end; i = i + 3
  elseif op == 'put' then
    if live then
      if ARGV[i + 3] == '' then
        call('SET', k, ARGV[i + 2])
      else
        call('SET', k, ARGV[i + 2], 'EX', ARGV[i + 3])
      end
    end
    i = i + 4
  elseif op == 'del' then
    if live then call('DEL', k) end; i = i + 2
  elseif op == 'hdel' then
    if live then call('HDEL', k, ARGV[i + 2]) end; i = i + 3
  else
    return redis.error_reply('tailor apply: unknown op ' .. tostring(op))
  end
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[5], ARGV[6]) end
return 0
