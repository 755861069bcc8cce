//! The profile store seam.
//!
//! Writes are [`Update`]s (an event's [`WriteOp`](tailor_core::ops::WriteOp)s plus its dedupe marker and
//! bus position), each applied atomically and at most once. Reads are a batch of [`Read`]s answered in
//! one round trip, so a recommendation costs one trip to Redis whatever it needs.

pub mod memory;
pub mod redis;
pub mod timed;
mod zset;

use async_trait::async_trait;
use std::collections::HashMap;
use tailor_core::ops::{Applied, Update};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("profile store unavailable: {0}")]
    Unavailable(String),
    #[error("profile store rejected the operation: {0}")]
    Rejected(String),
}

/// One thing to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// All fields of a hash.
    Hash(String),
    /// The first `n` entries of a list.
    List(String, usize),
    /// The `n` highest-scored members of a sorted set, highest first.
    Top(String, usize),
    /// Members of a sorted set by ascending rank, `start..=stop` (negative counts from the end).
    Range(String, isize, isize),
    /// A string value.
    Get(String),
    /// One field of a hash (answered as `Value::Text`).
    Field(String, String),
    /// The size of a sorted set.
    ZCard(String),
    /// The size of a set.
    SCard(String),
    /// The members of a set, unordered.
    Members(String),
    /// Whether `member` is in a set (answered as `Value::Count`, 1 or 0).
    IsMember(String, String),
}

/// The answer to one [`Read`], in the same position.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Hash(HashMap<String, String>),
    List(Vec<String>),
    Top(Vec<(String, f64)>),
    Text(Option<String>),
    Count(u64),
}

impl Value {
    pub fn into_hash(self) -> HashMap<String, String> {
        match self {
            Value::Hash(h) => h,
            _ => HashMap::new(),
        }
    }

    pub fn into_list(self) -> Vec<String> {
        match self {
            Value::List(l) => l,
            _ => Vec::new(),
        }
    }

    pub fn into_top(self) -> Vec<(String, f64)> {
        match self {
            Value::Top(t) => t,
            _ => Vec::new(),
        }
    }

    pub fn into_text(self) -> Option<String> {
        match self {
            Value::Text(t) => t,
            _ => None,
        }
    }

    pub fn into_count(self) -> u64 {
        match self {
            Value::Count(n) => n,
            _ => 0,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Applies each update atomically, skipping those already applied; the outcomes are in order.
    /// On error some updates may have been applied: callers retry the whole batch, which is safe.
    async fn apply(&self, updates: &[Update]) -> Result<Vec<Applied>, StoreError>;
    /// Answers a batch of reads, in order.
    async fn read(&self, reads: &[Read]) -> Result<Vec<Value>, StoreError>;
    /// Whether the store can be reached (readiness).
    async fn check(&self) -> Result<(), StoreError>;
    /// Every key starting with `prefix` (operators' jobs: erasure, replay; never the hot path).
    async fn scan(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

#[cfg(test)]
mod conformance;
