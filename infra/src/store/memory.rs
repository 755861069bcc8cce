//! The in-process store of embedded mode: Redis' data types (hash, list, sorted set, string with
//! expiry) in a map behind one mutex, interpreting the same [`Update`]s as the Redis backend.
//! A mutex suffices: each operation is short and no await happens while it is held.

use super::zset::{FastHash, SortedSet};
use super::{Read, Store, StoreError, Value};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tailor_core::ops::{Applied, Update, WriteOp};

enum Data {
    Text(String),
    Set(HashSet<String>),
    Hash(HashMap<String, String>),
    List(VecDeque<String>),
    ZSet(SortedSet),
}

struct Entry {
    data: Data,
    expires: Option<Instant>,
}

/// How often expired entries are dropped (reads skip them in between).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Db {
    map: HashMap<String, Entry, FastHash>,
    /// When expired entries were last dropped (`None`: never).
    swept: Option<Instant>,
}

/// See the module docs.
#[derive(Default)]
pub struct MemoryStore {
    db: Mutex<Db>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Db {
    fn live(&mut self, key: &str) -> Option<&mut Entry> {
        let expired = self
            .map
            .get(key)?
            .expires
            .is_some_and(|t| t <= Instant::now());
        if expired {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn entry(&mut self, key: &str, empty: fn() -> Data) -> &mut Data {
        // The key is copied only when the entry is new (`entry()` would copy it every time).
        if self.live(key).is_none() {
            self.map.insert(
                key.to_string(),
                Entry {
                    data: empty(),
                    expires: None,
                },
            );
        }
        &mut self.map.get_mut(key).expect("present").data
    }

    fn hash(&mut self, key: &str) -> Result<&mut HashMap<String, String>, StoreError> {
        match self.entry(key, || Data::Hash(HashMap::new())) {
            Data::Hash(h) => Ok(h),
            _ => Err(wrong_type(key)),
        }
    }

    fn list(&mut self, key: &str) -> Result<&mut VecDeque<String>, StoreError> {
        match self.entry(key, || Data::List(VecDeque::new())) {
            Data::List(l) => Ok(l),
            _ => Err(wrong_type(key)),
        }
    }

    fn zset(&mut self, key: &str) -> Result<&mut SortedSet, StoreError> {
        match self.entry(key, || Data::ZSet(SortedSet::default())) {
            Data::ZSet(z) => Ok(z),
            _ => Err(wrong_type(key)),
        }
    }

    fn set(&mut self, key: &str) -> Result<&mut HashSet<String>, StoreError> {
        match self.entry(key, || Data::Set(HashSet::new())) {
            Data::Set(s) => Ok(s),
            _ => Err(wrong_type(key)),
        }
    }

    /// Drops a collection left empty, as Redis does.
    fn drop_if_empty(&mut self, key: &str) {
        let empty = match self.map.get(key).map(|e| &e.data) {
            Some(Data::Set(s)) => s.is_empty(),
            Some(Data::ZSet(z)) => z.is_empty(),
            Some(Data::Hash(h)) => h.is_empty(),
            _ => false,
        };
        if empty {
            self.map.remove(key);
        }
    }

    fn put(&mut self, key: &str, value: String, ttl_secs: Option<u64>) {
        self.map.insert(
            key.to_string(),
            Entry {
                data: Data::Text(value),
                expires: ttl_secs.map(|t| Instant::now() + Duration::from_secs(t)),
            },
        );
    }

    fn run(&mut self, op: &WriteOp) -> Result<(), StoreError> {
        match op {
            WriteOp::HashIncr { key, field, by } => {
                let v = self
                    .hash(key)?
                    .entry(field.clone())
                    .or_insert_with(|| "0".into());
                let n: i64 = v.parse().map_err(|_| not_number(key, field))?;
                *v = (n + by).to_string();
            }
            WriteOp::HashIncrFloat { key, field, by } => {
                let v = self
                    .hash(key)?
                    .entry(field.clone())
                    .or_insert_with(|| "0".into());
                let n: f64 = v.parse().map_err(|_| not_number(key, field))?;
                *v = (n + by).to_string();
            }
            WriteOp::HashSet { key, field, value } => {
                self.hash(key)?.insert(field.clone(), value.clone());
            }
            WriteOp::HashMin { key, field, value } | WriteOp::HashMax { key, field, value } => {
                let min = matches!(op, WriteOp::HashMin { .. });
                let h = self.hash(key)?;
                let cur = h.get(field).and_then(|c| c.parse::<i64>().ok());
                let replace = match cur {
                    None => true,
                    Some(c) => (min && *value < c) || (!min && *value > c),
                };
                if replace {
                    h.insert(field.clone(), value.to_string());
                }
            }
            WriteOp::ListPushDistinct { key, value, cap } => {
                let l = self.list(key)?;
                l.retain(|v| v != value);
                l.push_front(value.clone());
                l.truncate(*cap as usize);
            }
            WriteOp::ZIncr { key, member, by } => {
                self.zset(key)?.incr(member, *by);
            }
            WriteOp::Expire { key, seconds } => {
                if let Some(e) = self.live(key) {
                    e.expires = Some(Instant::now() + Duration::from_secs(*seconds));
                }
            }
            WriteOp::ZSet { key, member, score } => {
                self.zset(key)?.insert(member, *score);
            }
            WriteOp::ZRemove { key, member } => {
                self.zset(key)?.remove(member);
                self.drop_if_empty(key);
            }
            WriteOp::SetAdd { key, member } => {
                self.set(key)?.insert(member.clone());
            }
            WriteOp::SetRemove { key, member } => {
                self.set(key)?.remove(member);
                self.drop_if_empty(key);
            }
            WriteOp::Put {
                key,
                value,
                ttl_secs,
            } => self.put(key, value.clone(), *ttl_secs),
            WriteOp::Delete { key } => {
                self.map.remove(key);
            }
            WriteOp::ZKeepTop { key, keep } => {
                self.zset(key)?.keep_top(*keep as usize);
                self.drop_if_empty(key);
            }
            WriteOp::HashDelete { key, field } => {
                self.hash(key)?.remove(field);
                self.drop_if_empty(key);
            }
        }
        Ok(())
    }

    fn apply_one(&mut self, u: &Update) -> Result<Applied, StoreError> {
        let mut wm = None;
        if let Some(p) = &u.position {
            wm = self.live(&p.key).and_then(|e| match &e.data {
                Data::Hash(h) => h.get(&p.field).and_then(|v| v.parse::<i64>().ok()),
                _ => None,
            });
            if wm.is_some_and(|w| w >= p.offset) {
                return Ok(Applied::BehindWatermark);
            }
            if wm.is_some_and(|w| p.since.is_some_and(|s| w >= s)) {
                return Ok(Applied::Conflict);
            }
        }
        if let Some(m) = &u.marker {
            if self.live(&m.key).is_some() {
                return Ok(Applied::DuplicateEvent);
            }
        }
        if let Some(g) = &u.guard {
            let current = self.live(&g.key).and_then(|e| match &e.data {
                Data::Hash(h) => h.get(&g.field).cloned(),
                _ => None,
            });
            if current != g.expected {
                return Ok(Applied::Conflict);
            }
        }
        let runs = u
            .position
            .as_ref()
            .map_or_else(|| vec![(0, u.ops.len())], |p| p.runs(u.ops.len()));
        let mut ops = u.ops.iter();
        for (offset, n) in runs {
            let live = wm.is_none_or(|w| offset > w);
            for op in ops.by_ref().take(n) {
                if live {
                    self.run(op)?;
                }
            }
        }
        if let Some(m) = &u.marker {
            self.put(&m.key, "1".into(), Some(m.ttl_secs));
        }
        if let Some(p) = &u.position {
            self.hash(&p.key)?
                .insert(p.field.clone(), p.offset.to_string());
        }
        Ok(Applied::Applied)
    }

    /// Drops expired entries now and then, so markers and sessions do not accumulate.
    fn sweep(&mut self) {
        // A full pass holds the lock for a while on a big store: at most one per interval.
        let due = self.swept.is_none_or(|t| t.elapsed() >= SWEEP_EVERY);
        if due {
            self.swept = Some(Instant::now());
            let now = Instant::now();
            self.map.retain(|_, e| e.expires.is_none_or(|t| t > now));
        }
    }
}

fn wrong_type(key: &str) -> StoreError {
    StoreError::Rejected(format!("{key} holds the wrong kind of value"))
}

fn not_number(key: &str, field: &str) -> StoreError {
    StoreError::Rejected(format!("{key} field {field} is not a number"))
}

#[async_trait]
impl Store for MemoryStore {
    async fn apply(&self, updates: &[Update]) -> Result<Vec<Applied>, StoreError> {
        let mut out = Vec::with_capacity(updates.len());
        for u in updates {
            // Lock per update, not per batch, so readers are never held behind a whole batch.
            let mut db = self.db.lock().expect("store lock");
            out.push(db.apply_one(u)?);
            db.sweep();
        }
        Ok(out)
    }

    async fn read(&self, reads: &[Read]) -> Result<Vec<Value>, StoreError> {
        let mut db = self.db.lock().expect("store lock");
        Ok(reads
            .iter()
            .map(|r| match r {
                Read::Hash(k) => Value::Hash(match db.live(k).map(|e| &e.data) {
                    Some(Data::Hash(h)) => h.clone(),
                    _ => HashMap::new(),
                }),
                Read::List(k, n) => Value::List(match db.live(k).map(|e| &e.data) {
                    Some(Data::List(l)) => l.iter().take(*n).cloned().collect(),
                    _ => Vec::new(),
                }),
                Read::Top(k, n) => Value::Top(match db.live(k).map(|e| &e.data) {
                    Some(Data::ZSet(z)) => z.top(*n),
                    _ => Vec::new(),
                }),
                Read::Range(k, start, stop) => Value::Top(match db.live(k).map(|e| &e.data) {
                    Some(Data::ZSet(z)) => z.range(*start, *stop),
                    _ => Vec::new(),
                }),
                Read::Get(k) => Value::Text(match db.live(k).map(|e| &e.data) {
                    Some(Data::Text(t)) => Some(t.clone()),
                    _ => None,
                }),
                Read::Field(k, f) => Value::Text(match db.live(k).map(|e| &e.data) {
                    Some(Data::Hash(h)) => h.get(f).cloned(),
                    _ => None,
                }),
                Read::ZCard(k) | Read::SCard(k) => {
                    Value::Count(match db.live(k).map(|e| &e.data) {
                        Some(Data::ZSet(z)) => z.len() as u64,
                        Some(Data::Set(s)) => s.len() as u64,
                        _ => 0,
                    })
                }
                Read::Members(k) => Value::List(match db.live(k).map(|e| &e.data) {
                    Some(Data::Set(s)) => s.iter().cloned().collect(),
                    _ => Vec::new(),
                }),
                Read::IsMember(k, m) => Value::Count(match db.live(k).map(|e| &e.data) {
                    Some(Data::Set(s)) => u64::from(s.contains(m)),
                    _ => 0,
                }),
            })
            .collect())
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let db = self.db.lock().expect("store lock");
        let now = Instant::now();
        Ok(db
            .map
            .iter()
            .filter(|(k, e)| k.starts_with(prefix) && e.expires.is_none_or(|t| t > now))
            .map(|(k, _)| k.clone())
            .collect())
    }
}
