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
//! Redis Cluster (`redis.cluster = true`, [`RedisStore::connect_cluster`]): every [`Update`] keeps
//! its keys in one hash slot (the processor plans a subject's document and the site's shared keys as
//! separate updates, each with its own watermark), so each script runs on one node, and reads are
//! single-key commands. A batch becomes one pipeline per hash slot, all sent at once over the
//! cluster connection (which follows `MOVED` and `ASK` redirections and reconnects); `scan` walks
//! every primary.

use super::{Read, Store, StoreError, Value};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ErrorKind, RedisError, RedisResult};
use std::collections::HashMap;
use std::time::Duration;
use tailor_core::ops::{Applied, Update, WriteOp};

const APPLY_LUA: &str = include_str!("apply.lua");

/// Longest pause between two reconnection attempts.
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(1);
/// Longest any one call (a pipeline, a command, a reconnection it waits for) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one call against Redis within [`CALL_TIMEOUT`].
async fn bounded<T>(call: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
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
    conn: Conn,
    script: redis::Script,
}

/// A command and the key that places it in a hash slot.
type Placed<'a> = (&'a str, Cmd);

/// One Redis (reconnecting) or a Redis Cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag (the part between the first
/// `{` and the next `}`, when not empty) or of the whole key, modulo 16384.
pub fn hash_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|b| *b == b'{').and_then(|open| {
        let rest = &bytes[open + 1..];
        let close = rest.iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let mut crc: u16 = 0;
    for b in tagged.unwrap_or(bytes) {
        crc ^= (*b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

impl Conn {
    /// Runs `cmds` (each with the key that places it) and answers in order: one pipeline on a single
    /// Redis, one pipeline per hash slot (all at once) on a cluster; within [`CALL_TIMEOUT`].
    async fn run(&self, cmds: Vec<Placed<'_>>) -> RedisResult<Vec<redis::Value>> {
        bounded(self.run_unbounded(cmds)).await
    }

    async fn run_unbounded(&self, cmds: Vec<Placed<'_>>) -> RedisResult<Vec<redis::Value>> {
        match self {
            Conn::Single(c) => {
                let mut pipe = redis::pipe();
                for (_, cmd) in cmds {
                    pipe.add_command(cmd);
                }
                pipe.query_async(&mut c.clone()).await
            }
            Conn::Cluster(c) => {
                let mut by_slot: HashMap<u16, (Vec<usize>, redis::Pipeline)> = HashMap::new();
                let n = cmds.len();
                for (i, (key, cmd)) in cmds.into_iter().enumerate() {
                    let e = by_slot
                        .entry(hash_slot(key))
                        .or_insert_with(|| (Vec::new(), redis::pipe()));
                    e.0.push(i);
                    e.1.add_command(cmd);
                }
                let groups: Vec<(Vec<usize>, redis::Pipeline)> = by_slot.into_values().collect();
                let replies =
                    futures::future::try_join_all(groups.iter().map(|(_, pipe)| async move {
                        let replies: Vec<redis::Value> = pipe.query_async(&mut c.clone()).await?;
                        Ok::<_, RedisError>(replies)
                    }))
                    .await?;
                let mut out = vec![redis::Value::Nil; n];
                for ((positions, _), replies) in groups.iter().zip(replies) {
                    for (i, v) in positions.iter().zip(replies) {
                        out[*i] = v;
                    }
                }
                Ok(out)
            }
        }
    }

    /// One command; on a cluster, routed as the command itself says (`SCRIPT LOAD` and `PING` go to
    /// every node).
    async fn query(&self, cmd: &Cmd) -> RedisResult<redis::Value> {
        bounded(async {
            match self {
                Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
                Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
            }
        })
        .await
    }
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
            // No delay grows past RECONNECT_DELAY_MAX (plus the crate's jitter).
            .set_factor(2)
            .set_max_delay(RECONNECT_DELAY_MAX.as_millis() as u64);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        RedisStore::with(Conn::Single(conn)).await
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port`, comma-separated) and
    /// loads the apply script on every node.
    pub async fn connect_cluster(urls: &str) -> Result<Self, StoreError> {
        let nodes: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let client = redis::cluster::ClusterClientBuilder::new(nodes)
            .connection_timeout(Duration::from_secs(3))
            .response_timeout(Duration::from_secs(5))
            .retries(3)
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        let conn = client.get_async_connection().await.map_err(unavailable)?;
        RedisStore::with(Conn::Cluster(conn)).await
    }

    async fn with(conn: Conn) -> Result<Self, StoreError> {
        let store = RedisStore {
            conn,
            script: redis::Script::new(APPLY_LUA),
        };
        store.load_script().await?;
        Ok(store)
    }

    async fn load_script(&self) -> Result<(), StoreError> {
        self.conn
            .query(redis::cmd("SCRIPT").arg("LOAD").arg(APPLY_LUA))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// One command per update that touches a key (an unconditional single `SET` or `DEL` as itself,
    /// everything else as an `EVALSHA` of the script), each with the key that places it, and the
    /// positions of those updates.
    fn commands<'a>(&self, updates: &'a [Update]) -> (Vec<Placed<'a>>, Vec<(usize, bool)>) {
        let mut cmds = Vec::with_capacity(updates.len());
        let mut sent = Vec::with_capacity(updates.len());
        for (i, u) in updates.iter().enumerate() {
            let plain = u.guard.is_none() && u.marker.is_none() && u.position.is_none();
            match u.ops.as_slice() {
                [WriteOp::Put {
                    key,
                    value,
                    ttl_secs,
                }] if plain => {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(key).arg(value);
                    if let Some(t) = ttl_secs {
                        cmd.arg("EX").arg(*t);
                    }
                    cmds.push((key.as_str(), cmd));
                    sent.push((i, true));
                }
                [WriteOp::Delete { key }] if plain => {
                    let mut cmd = redis::cmd("DEL");
                    cmd.arg(key);
                    cmds.push((key.as_str(), cmd));
                    sent.push((i, true));
                }
                _ => {
                    if let Some((keys, args)) = encode(u) {
                        let mut cmd = redis::cmd("EVALSHA");
                        cmd.arg(self.script.get_hash())
                            .arg(keys.len())
                            .arg(&keys)
                            .arg(args);
                        cmds.push((keys[0], cmd));
                        sent.push((i, false));
                    }
                }
            }
        }
        (cmds, sent)
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
            args.push(p.since.map(|s| s.to_string()).unwrap_or_default());
            args.push(p.parts.len().to_string());
            for (offset, n) in &p.parts {
                args.push(offset.to_string());
                args.push(n.to_string());
            }
        }
        None => args.extend([String::new(), "0".into(), String::new(), "0".into()]),
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

impl RedisStore {
    /// The cluster's primaries (host, port), from `CLUSTER NODES`.
    async fn primaries(&self) -> Result<Vec<(String, u16)>, StoreError> {
        let reply = self
            .conn
            .query(redis::cmd("CLUSTER").arg("NODES"))
            .await
            .map_err(unavailable)?;
        let text: String =
            redis::from_redis_value(&reply).map_err(|e| StoreError::Rejected(e.to_string()))?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let flags = fields.get(2)?;
                if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                    return None;
                }
                // ip:port@cport[,hostname]
                let addr = fields.get(1)?.split(['@', ',']).next()?;
                let (host, port) = addr.rsplit_once(':')?;
                Some((host.to_string(), port.parse().ok()?))
            })
            .collect())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn apply(&self, updates: &[Update]) -> Result<Vec<Applied>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let (cmds, sent) = self.commands(updates);
        if sent.is_empty() {
            return Ok(vec![Applied::Applied; updates.len()]);
        }
        let codes: Vec<redis::Value> = match self.conn.run(cmds).await {
            Ok(codes) => codes,
            Err(e) if is_noscript(&e) => {
                self.load_script().await?;
                let (cmds, _) = self.commands(updates);
                self.conn.run(cmds).await.map_err(unavailable)?
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
        let cmds = reads
            .iter()
            .map(|r| {
                let (name, key) = match r {
                    Read::Hash(k) => ("HGETALL", k),
                    Read::List(k, _) => ("LRANGE", k),
                    Read::Top(k, _) => ("ZREVRANGE", k),
                    Read::Range(k, ..) => ("ZRANGE", k),
                    Read::Get(k) => ("GET", k),
                    Read::Field(k, _) => ("HGET", k),
                    Read::ZCard(k) => ("ZCARD", k),
                    Read::SCard(k) => ("SCARD", k),
                    Read::Members(k) => ("SMEMBERS", k),
                    Read::IsMember(k, _) => ("SISMEMBER", k),
                };
                let mut cmd = redis::cmd(name);
                cmd.arg(key);
                match r {
                    Read::List(_, n) => cmd.arg(0).arg(*n as i64 - 1),
                    Read::Top(_, n) => cmd.arg(0).arg(*n as i64 - 1).arg("WITHSCORES"),
                    Read::Range(_, start, stop) => {
                        cmd.arg(*start as i64).arg(*stop as i64).arg("WITHSCORES")
                    }
                    Read::Field(_, f) => cmd.arg(f),
                    Read::IsMember(_, m) => cmd.arg(m),
                    _ => &mut cmd,
                };
                (key.as_str(), cmd)
            })
            .collect();
        let raw: Vec<redis::Value> = self.conn.run(cmds).await.map_err(unavailable)?;
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
        // Every node holding keys: the one Redis, or each primary of the cluster.
        let nodes: Vec<Option<(String, u16)>> = match &self.conn {
            Conn::Single(_) => vec![None],
            Conn::Cluster(_) => self.primaries().await?.into_iter().map(Some).collect(),
        };
        let mut keys = Vec::new();
        for node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000);
                let reply = match (&self.conn, &node) {
                    (Conn::Cluster(c), Some((host, port))) => {
                        let at = SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        };
                        c.clone()
                            .route_command(&scan, RoutingInfo::SingleNode(at))
                            .await
                    }
                    _ => self.conn.query(&scan).await,
                };
                let (next, batch): (u64, Vec<String>) =
                    redis::from_redis_value(&reply.map_err(unavailable)?)
                        .map_err(|e| StoreError::Rejected(e.to_string()))?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.conn
            .query(&redis::cmd("PING"))
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::hash_slot;

    #[test]
    fn hash_slots_follow_the_cluster_specification() {
        // The specification's CRC16 check value, and its hash tag examples.
        assert_eq!(hash_slot("123456789"), 0x31C3);
        assert_eq!(hash_slot("foo"), 12182);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        assert_eq!(hash_slot("{user1000}.followers"), hash_slot("user1000"));
        assert_ne!(
            hash_slot("foo{}{bar}"),
            hash_slot("bar"),
            "an empty tag hashes the whole key"
        );
        assert_eq!(hash_slot("foo{{bar}}zap"), hash_slot("{bar"));
        assert_eq!(
            hash_slot("tailor:{shop:m:ann}:state"),
            hash_slot("shop:m:ann")
        );
    }
}
