//! The production store: Redis through the `redis` crate.
//!
//! Each [`Update`] becomes one `EVALSHA` of `apply.lua`, which checks the watermark and the event's
//! marker and then runs the ops, all inside Redis' single-threaded script execution: an update is applied
//! entirely or not at all, and at most once. A batch of updates is one pipelined round trip. Reads are
//! pipelined likewise. The connection manager reconnects after a Redis restart; a `NOSCRIPT` reply (a
//! restarted or flushed Redis) reloads the script and retries, which is safe because updates are
//! idempotent.
//!
//! Recovery is bounded: reconnection attempts are at most [`RECONNECT_DELAY_MAX`] apart (the
//! `redis` crate's default backoff multiplies each delay by 100, so a processor that met a dead Redis
//! once waited minutes on its reconnection, silently, after Redis was back), and no call waits
//! longer than [`CALL_TIMEOUT`], so a caller always gets an answer or an error to log and retry.
//!
//! Redis Cluster: every [`Update`] keeps its keys in one hash slot (the processor plans a subject's
//! document and the site's shared keys as separate updates, each with its own watermark), so each
//! script runs on one node. Reads are single-key commands.

use super::{Read, Store, StoreError, Value};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError};
use std::collections::HashMap;
use std::time::Duration;
use tailor_core::ops::{Applied, Update, WriteOp};

const APPLY_LUA: &str = include_str!("apply.lua");

/// Longest pause between two reconnection attempts.
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(1);
/// Longest any one call (a pipeline, a command, a reconnection it waits for) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one call against Redis within [`CALL_TIMEOUT`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from Redis within {} s", CALL_TIMEOUT.as_secs()),
        ))),
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    script: redis::Script,
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects (waiting at most a few seconds) and loads the apply script.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Rejected(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(3))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(3)
            // Delays of 1 s, 2 s, ... (with jitter), none longer than RECONNECT_DELAY_MAX.
            .set_factor(2)
            .set_max_delay(RECONNECT_DELAY_MAX.as_millis() as u64);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        let store = RedisStore {
            conn,
            script: redis::Script::new(APPLY_LUA),
        };
        store.load_script().await?;
        Ok(store)
    }

    async fn load_script(&self) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: String = bounded(
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(APPLY_LUA)
                .query_async(&mut c),
        )
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// One command per update that touches a key (an unconditional single `SET` or `DEL` as itself,
    /// everything else as an `EVALSHA` of the script), and the positions of those updates.
    fn pipeline(&self, updates: &[Update]) -> (redis::Pipeline, Vec<(usize, bool)>) {
        let mut pipe = redis::pipe();
        let mut sent = Vec::with_capacity(updates.len());
        for (i, u) in updates.iter().enumerate() {
            let plain = u.guard.is_none() && u.marker.is_none() && u.position.is_none();
            match u.ops.as_slice() {
                [WriteOp::Put {
                    key,
                    value,
                    ttl_secs,
                }] if plain => {
                    let cmd = pipe.cmd("SET").arg(key).arg(value);
                    if let Some(t) = ttl_secs {
                        cmd.arg("EX").arg(*t);
                    }
                    sent.push((i, true));
                }
                [WriteOp::Delete { key }] if plain => {
                    pipe.cmd("DEL").arg(key);
                    sent.push((i, true));
                }
                _ => {
                    if let Some((keys, args)) = encode(u) {
                        pipe.cmd("EVALSHA")
                            .arg(self.script.get_hash())
                            .arg(keys.len())
                            .arg(keys)
                            .arg(args);
                        sent.push((i, false));
                    }
                }
            }
        }
        (pipe, sent)
    }
}

/// Turns an update into the script's KEYS and ARGV (see `apply.lua`); `None` for an update that
/// touches no key (nothing to do).
fn encode(u: &Update) -> Option<(Vec<&str>, Vec<String>)> {
    let anchor = u.keys().next()?;
    let mut keys: Vec<&str> = vec![
        u.guard.as_ref().map_or(anchor, |g| g.key.as_str()),
        u.marker.as_ref().map_or(anchor, |m| m.key.as_str()),
        u.position.as_ref().map_or(anchor, |p| p.key.as_str()),
    ];
    let mut args: Vec<String> = Vec::with_capacity(6 + 4 * u.ops.len());
    match &u.guard {
        Some(g) => {
            args.push(g.field.clone());
            args.push(if g.expected.is_some() { "1" } else { "0" }.into());
            args.push(g.expected.clone().unwrap_or_default());
        }
        None => args.extend([String::new(), "0".into(), String::new()]),
    }
    args.push(
        u.marker
            .as_ref()
            .map(|m| m.ttl_secs.to_string())
            .unwrap_or_default(),
    );
    match &u.position {
        Some(p) => {
            args.push(p.field.clone());
            args.push(p.offset.to_string());
        }
        None => args.extend([String::new(), "0".into()]),
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for op in &u.ops {
        let key = op.key();
        let k = match index.get(key) {
            Some(i) => i.to_string(),
            None => {
                keys.push(key);
                index.insert(key, keys.len());
                keys.len().to_string()
            }
        };
        match op {
            WriteOp::HashIncr { field, by, .. } => {
                args.extend(["hincr".into(), k, field.clone(), by.to_string()])
            }
            WriteOp::HashIncrFloat { field, by, .. } => {
                args.extend(["hincrf".into(), k, field.clone(), by.to_string()])
            }
            WriteOp::HashSet { field, value, .. } => {
                args.extend(["hset".into(), k, field.clone(), value.clone()])
            }
            WriteOp::HashMin { field, value, .. } => {
                args.extend(["hmin".into(), k, field.clone(), value.to_string()])
            }
            WriteOp::HashMax { field, value, .. } => {
                args.extend(["hmax".into(), k, field.clone(), value.to_string()])
            }
            WriteOp::ListPushDistinct { value, cap, .. } => {
                args.extend(["lpushd".into(), k, value.clone(), cap.to_string()])
            }
            WriteOp::ZIncr { member, by, .. } => {
                args.extend(["zincr".into(), k, member.clone(), by.to_string()])
            }
            WriteOp::ZSet { member, score, .. } => {
                args.extend(["zset".into(), k, member.clone(), score.to_string()])
            }
            WriteOp::ZRemove { member, .. } => args.extend(["zrem".into(), k, member.clone()]),
            WriteOp::SetAdd { member, .. } => args.extend(["sadd".into(), k, member.clone()]),
            WriteOp::SetRemove { member, .. } => args.extend(["srem".into(), k, member.clone()]),
            WriteOp::Put {
                value, ttl_secs, ..
            } => args.extend([
                "put".into(),
                k,
                value.clone(),
                ttl_secs.map(|t| t.to_string()).unwrap_or_default(),
            ]),
            WriteOp::Delete { .. } => args.extend(["del".into(), k]),
            WriteOp::HashDelete { field, .. } => args.extend(["hdel".into(), k, field.clone()]),
            WriteOp::ZKeepTop { keep, .. } => args.extend(["zkeep".into(), k, keep.to_string()]),
            WriteOp::Expire { seconds, .. } => {
                args.extend(["expire".into(), k, seconds.to_string()])
            }
        }
    }
    Some((keys, args))
}

/// The outcome of one pipelined reply: a plain command (`SET`, `DEL`) applied, or the script's code.
fn outcome(plain: bool, reply: redis::Value) -> Result<Applied, StoreError> {
    let code = match reply {
        _ if plain => 0,
        redis::Value::Int(code) => code,
        other => {
            return Err(StoreError::Rejected(format!(
                "unexpected reply from the apply script: {other:?}"
            )))
        }
    };
    match code {
        0 => Ok(Applied::Applied),
        1 => Ok(Applied::DuplicateEvent),
        2 => Ok(Applied::BehindWatermark),
        3 => Ok(Applied::Conflict),
        other => Err(StoreError::Rejected(format!(
            "apply script returned {other}"
        ))),
    }
}

fn is_noscript(e: &RedisError) -> bool {
    e.kind() == ErrorKind::NoScriptError
}

#[async_trait]
impl Store for RedisStore {
    async fn apply(&self, updates: &[Update]) -> Result<Vec<Applied>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let (pipe, sent) = self.pipeline(updates);
        if sent.is_empty() {
            return Ok(vec![Applied::Applied; updates.len()]);
        }
        let mut c = self.conn.clone();
        let codes: Vec<redis::Value> = match bounded(pipe.query_async(&mut c)).await {
            Ok(codes) => codes,
            Err(e) if is_noscript(&e) => {
                self.load_script().await?;
                bounded(pipe.query_async(&mut c))
                    .await
                    .map_err(unavailable)?
            }
            Err(e) if e.kind() == ErrorKind::ResponseError || e.kind() == ErrorKind::TypeError => {
                return Err(StoreError::Rejected(e.to_string()))
            }
            Err(e) => return Err(unavailable(e)),
        };
        let mut out = vec![Applied::Applied; updates.len()];
        for ((i, plain), reply) in sent.into_iter().zip(codes) {
            out[i] = outcome(plain, reply)?;
        }
        Ok(out)
    }

    async fn read(&self, reads: &[Read]) -> Result<Vec<Value>, StoreError> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for r in reads {
            match r {
                Read::Hash(k) => pipe.cmd("HGETALL").arg(k),
                Read::List(k, n) => pipe.cmd("LRANGE").arg(k).arg(0).arg(*n as i64 - 1),
                Read::Top(k, n) => pipe
                    .cmd("ZREVRANGE")
                    .arg(k)
                    .arg(0)
                    .arg(*n as i64 - 1)
                    .arg("WITHSCORES"),
                Read::Range(k, start, stop) => pipe
                    .cmd("ZRANGE")
                    .arg(k)
                    .arg(*start as i64)
                    .arg(*stop as i64)
                    .arg("WITHSCORES"),
                Read::Get(k) => pipe.cmd("GET").arg(k),
                Read::Field(k, f) => pipe.cmd("HGET").arg(k).arg(f),
                Read::ZCard(k) => pipe.cmd("ZCARD").arg(k),
                Read::SCard(k) => pipe.cmd("SCARD").arg(k),
                Read::Members(k) => pipe.cmd("SMEMBERS").arg(k),
                Read::IsMember(k, m) => pipe.cmd("SISMEMBER").arg(k).arg(m),
            };
        }
        let mut c = self.conn.clone();
        let raw: Vec<redis::Value> = bounded(pipe.query_async(&mut c))
            .await
            .map_err(unavailable)?;
        reads
            .iter()
            .zip(raw)
            .map(|(r, v)| {
                let conv = |e: RedisError| StoreError::Rejected(e.to_string());
                Ok(match r {
                    Read::Hash(_) => Value::Hash(redis::from_redis_value(&v).map_err(conv)?),
                    Read::List(_, _) => Value::List(redis::from_redis_value(&v).map_err(conv)?),
                    Read::Top(_, _) | Read::Range(..) => {
                        Value::Top(redis::from_redis_value(&v).map_err(conv)?)
                    }
                    Read::Get(_) | Read::Field(..) => {
                        Value::Text(redis::from_redis_value(&v).map_err(conv)?)
                    }
                    Read::ZCard(_) | Read::SCard(_) | Read::IsMember(..) => {
                        Value::Count(redis::from_redis_value(&v).map_err(conv)?)
                    }
                    Read::Members(_) => Value::List(redis::from_redis_value(&v).map_err(conv)?),
                })
            })
            .collect()
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Glob-escape the prefix: ids may contain `*`, `?`, `[`, `]` or `\`.
        let mut pattern = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let mut c = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = bounded(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c),
            )
            .await
            .map_err(unavailable)?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn check(&self) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: String = bounded(redis::cmd("PING").query_async(&mut c))
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
