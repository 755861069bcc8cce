//! Windowed series for the ops dashboard: what happened in each 10 s window of the last 15 minutes.
//!
//! A series is one endpoint (service and route template), one stage (a `*_duration_seconds` metric and
//! its labels), one flow (a counter of events, recommendations or dead letters) or one level (a gauge:
//! spool bytes, consumer lag). Each keeps a ring of [`Window`]s indexed by `unix seconds / 10`; a
//! window is created by its first sample and dropped once older than [`RETENTION_WINDOWS`], so an idle
//! series costs nothing and memory is bounded by series × 90 windows. Latencies are kept in
//! microseconds in an [`hdrhistogram`] with two significant digits (1 % precision is plenty for an
//! operator) over a fixed range, 1 µs to [`LATENCY_MAX_MICROS`] (slower samples count at the top),
//! with 32-bit counts: every window's histogram has the same size (10 KiB) whatever latencies it
//! sees, so the series' memory is flat once the retention is full (an auto-resizing histogram grew
//! with each new maximum, and the process' memory with the worst latency of the last 15 minutes).
//!
//! Invariant: the window index is always passed in, never read from a clock here, so the arithmetic is
//! tested without waiting; [`now_index`] is the one clock read, by the recorder and the JSON view.

use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Length of one window.
pub const WINDOW_SECONDS: u64 = 10;
/// Windows kept: 15 minutes.
pub const RETENTION_WINDOWS: u64 = 90;
/// The highest latency a window tells apart (60 s); slower samples are recorded as this.
pub const LATENCY_MAX_MICROS: u64 = 60_000_000;

/// A window's latency histogram (see the module docs).
pub type Latencies = Histogram<u32>;

/// An empty latency histogram of the fixed shape every window uses.
pub fn latencies() -> Latencies {
    let mut h = Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 2)
        .expect("1 µs to 60 s with 2 significant digits is valid");
    h.auto(false);
    h
}

/// The index of the window holding this instant.
pub fn now_index() -> u64 {
    unix_seconds() / WINDOW_SECONDS
}

pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a series shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An HTTP route: latency, requests, errors (5xx) and rejections (4xx).
    Endpoint,
    /// A stage's latency: processor batch, store round trip, recommendation, freshness.
    Stage,
    /// A counter's rate.
    Flow,
    /// A gauge's value.
    Level,
}

/// Which series: its kind, name and the labels that tell it apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId {
    pub kind: Kind,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// One window of one series.
#[derive(Debug, Default)]
pub struct Window {
    /// Latencies in microseconds (endpoints and stages); created by the first sample.
    pub latency: Option<Latencies>,
    /// Events counted (flows).
    pub count: u64,
    /// Answers with a 5xx status (endpoints).
    pub errors: u64,
    /// Answers with a 4xx status (endpoints): refused input, authentication, rate limits.
    pub rejections: u64,
    /// The gauge's value at the last change in this window (levels).
    pub level: f64,
}

impl Window {
    pub fn record_micros(&mut self, micros: u64) {
        self.latency
            .get_or_insert_with(latencies)
            .saturating_record(micros.clamp(1, LATENCY_MAX_MICROS));
    }

    /// Requests or samples seen: a latency's count, else the counter.
    pub fn total(&self) -> u64 {
        self.latency.as_ref().map_or(self.count, |h| h.len())
    }
}

/// The windows of one series, oldest first.
#[derive(Debug, Default)]
pub struct Ring {
    windows: VecDeque<(u64, Window)>,
    /// A level's current value (gauges change by increments as well as by setting).
    pub current: f64,
}

impl Ring {
    /// The window `index`, created if needed; windows older than the retention are dropped. A sample
    /// stamped before the newest window (a clock step back) goes into the newest.
    pub fn at(&mut self, index: u64) -> &mut Window {
        if self.windows.back().is_none_or(|(i, _)| *i < index) {
            self.windows.push_back((index, Window::default()));
        }
        let newest = self.windows.back().map_or(index, |(i, _)| *i);
        while self
            .windows
            .front()
            .is_some_and(|(i, _)| *i + RETENTION_WINDOWS <= newest)
        {
            self.windows.pop_front();
        }
        &mut self.windows.back_mut().expect("just ensured").1
    }

    /// The windows still within the retention at `now`, oldest first.
    pub fn recent(&self, now: u64) -> impl Iterator<Item = &(u64, Window)> {
        self.windows
            .iter()
            .filter(move |(i, _)| *i + RETENTION_WINDOWS > now)
    }
}

/// Every series of the process.
#[derive(Default)]
pub struct Registry {
    series: RwLock<HashMap<SeriesId, Arc<Mutex<Ring>>>>,
}

impl Registry {
    /// The series `id`, created on first use.
    pub fn series(&self, id: SeriesId) -> Arc<Mutex<Ring>> {
        if let Some(s) = self.series.read().expect("not poisoned").get(&id) {
            return s.clone();
        }
        self.series
            .write()
            .expect("not poisoned")
            .entry(id)
            .or_default()
            .clone()
    }

    /// Every series, sorted by kind, name and labels.
    pub fn all(&self) -> Vec<(SeriesId, Arc<Mutex<Ring>>)> {
        let mut all: Vec<_> = self
            .series
            .read()
            .expect("not poisoned")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The process-wide registry the metrics recorder feeds.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_lands_in_its_window_and_old_windows_are_dropped() {
        let mut ring = Ring::default();
        ring.at(100).record_micros(1_000);
        ring.at(100).record_micros(3_000);
        ring.at(101).count += 1;
        assert_eq!(ring.recent(101).count(), 2);
        assert_eq!(ring.recent(101).next().unwrap().1.total(), 2);
        // 90 windows later the first two have left the retention, in the view and in memory.
        ring.at(100 + RETENTION_WINDOWS + 1).count += 1;
        let kept: Vec<u64> = ring
            .recent(100 + RETENTION_WINDOWS + 1)
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(kept, vec![100 + RETENTION_WINDOWS + 1]);
        assert_eq!(ring.windows.len(), 1);
    }

    #[test]
    fn the_view_leaves_out_windows_that_aged_without_new_samples() {
        let mut ring = Ring::default();
        ring.at(5).count += 1;
        assert_eq!(ring.recent(5 + RETENTION_WINDOWS - 1).count(), 1);
        assert_eq!(ring.recent(5 + RETENTION_WINDOWS).count(), 0);
    }

    #[test]
    fn a_clock_step_back_counts_in_the_newest_window() {
        let mut ring = Ring::default();
        ring.at(50).count += 1;
        ring.at(49).count += 1;
        let w: Vec<(u64, u64)> = ring.recent(50).map(|(i, w)| (*i, w.count)).collect();
        assert_eq!(w, vec![(50, 2)]);
    }

    #[test]
    fn quantiles_come_from_the_window_histogram() {
        let mut w = Window::default();
        for ms in 1..=100u64 {
            w.record_micros(ms * 1_000);
        }
        let h = w.latency.as_ref().unwrap();
        let p50 = h.value_at_quantile(0.5) as f64 / 1_000.0;
        let p99 = h.value_at_quantile(0.99) as f64 / 1_000.0;
        assert!((49.0..=51.0).contains(&p50), "p50 {p50}");
        assert!((98.0..=100.0).contains(&p99), "p99 {p99}");
        assert_eq!(w.total(), 100);
    }

    #[test]
    fn a_window_has_one_size_whatever_it_records() {
        let mut quick = Window::default();
        quick.record_micros(100);
        let mut slow = Window::default();
        slow.record_micros(100);
        slow.record_micros(3_600_000_000); // an hour: past the range
        let (q, s) = (quick.latency.unwrap(), slow.latency.unwrap());
        assert_eq!(q.distinct_values(), s.distinct_values(), "no growth");
        assert_eq!(s.len(), 2, "the slow sample is counted");
        let top = s.value_at_quantile(1.0);
        assert!(
            s.equivalent(top, LATENCY_MAX_MICROS),
            "and shown at the top of the range: {top}"
        );
    }

    #[test]
    fn one_series_per_id() {
        let r = Registry::default();
        let id = SeriesId {
            kind: Kind::Flow,
            name: "x".into(),
            labels: BTreeMap::new(),
        };
        r.series(id.clone()).lock().unwrap().at(1).count += 2;
        assert_eq!(r.series(id).lock().unwrap().at(1).count, 2);
        assert_eq!(r.all().len(), 1);
    }
}
