//! The on-disk spool: keeps the collector accepting events while Kafka is unreachable.
//!
//! [`SpoolingProducer`] wraps the real producer. Normally a record goes straight to the broker. When a
//! send fails (the broker did not confirm within the delivery timeout), the record is appended to a local
//! append-only log and fsynced *before* `send` returns, so a 2xx the collector answers is backed either
//! by the broker or by the disk. From then on every record goes to the spool (never around it, so the
//! order of a key's records is kept) until a background drainer has replayed the whole spool, oldest
//! first, into the broker. Only when the spool holds `max_bytes` does `send` fail, and the collector
//! answers 503 with `Retry-After`.
//!
//! Readiness says when the bus has stopped confirming: records waiting in the spool with no record
//! drained for longer than the stall limit (a broker that is down, or up and failing every request)
//! make `check` fail, and `tailor_spool_unconfirmed_seconds{spool}` says for how long, as does a full
//! spool.
//!
//! The spool survives a restart: segments are files `NNNNNNNNNNNNNNNNNNNN.spool` of length-prefixed,
//! CRC-checked records, and a `cursor` file says how far the oldest segment has been drained. A torn
//! record at the tail (a crash mid-append, never acknowledged) is cut off at open. Draining is
//! at-least-once: a crash between a send and the cursor update replays a few records, which the
//! processor drops by event id.

use super::{BusError, Delivered, Producer};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A segment is closed and a new one started beyond this size.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Records sent to the broker per drain step.
const DRAIN_CHUNK: usize = 500;
/// Per-record framing: payload length, key length, CRC-32 of key and payload.
const HEADER: usize = 4 + 2 + 4;
const CURSOR: &str = "cursor";
/// Default of how long records may wait unconfirmed before the spool reports a stall.
const STALL_AFTER: Duration = Duration::from_secs(60);

/// Where a spooled record's delivery is reported: it has no broker offset yet.
pub const SPOOLED: Delivered = Delivered {
    partition: -1,
    offset: -1,
};

/// A spooled record: its bus key and payload. The key may end with [`TRACE`] and the record's
/// request id (keys are made of ids, which hold no control character; records spooled before
/// request ids existed have none).
type Record = (String, Vec<u8>);

/// Separates a spooled key from the request id it carries.
const TRACE: char = '\u{1}';

struct Segment {
    seq: u64,
    /// Bytes written to the file.
    len: u64,
}

struct State {
    dir: PathBuf,
    /// The directory's name, the `spool` label of the metrics (`events`, `dead-letters`).
    name: String,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    /// Byte position of the next record to drain in the oldest segment.
    cursor: u64,
    /// Open handle on the newest segment.
    writer: Option<File>,
    /// Set when a send failed; cleared by the drainer once the spool is empty.
    active: bool,
    /// `active`, for the producer's every send to read without the lock.
    active_flag: Arc<AtomicBool>,
    /// Set when an append was refused for lack of room; cleared when the drainer frees some.
    full: bool,
    /// Since when the oldest waiting record has gone unconfirmed: the first append to an empty spool,
    /// the opening of a non-empty one, or the drainer's last confirmed step.
    confirmed_at: tokio::time::Instant,
    /// Waiting unconfirmed longer than this is a stall.
    stall_after: Duration,
    /// Held for the spool's lifetime: two processes appending to one spool would interleave records.
    _lock: File,
}

impl State {
    fn set_active(&mut self, active: bool) {
        self.active = active;
        self.active_flag.store(active, Ordering::Release);
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.spool"))
    }

    /// Bytes not yet drained.
    fn pending_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum::<u64>() - self.cursor
    }

    fn is_empty(&self) -> bool {
        self.pending_bytes() == 0
    }

    fn append(&mut self, records: &[(&str, &[u8])]) -> Result<(), BusError> {
        let mut buf = Vec::new();
        for (key, payload) in records {
            encode(&mut buf, key, payload)?;
        }
        let size = buf.len() as u64;
        if self.pending_bytes() + size > self.max_bytes {
            metrics::counter!("tailor_spool_records_total", "spool" => self.name.clone(), "outcome" => "full")
                .increment(records.len() as u64);
            self.full = true;
            return Err(BusError::Delivery(format!(
                "the broker is unreachable and the spool is full ({} of collector.spool_max_bytes = {} bytes used)",
                self.pending_bytes(),
                self.max_bytes
            )));
        }
        if self.is_empty() {
            self.confirmed_at = tokio::time::Instant::now();
        }
        let roll = match self.segments.back() {
            None => true,
            Some(s) => s.len + size > SEGMENT_BYTES && s.len > 0,
        };
        if roll {
            let seq = self.segments.back().map_or(0, |s| s.seq + 1);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(seq))
                .map_err(io)?;
            if self.segments.is_empty() {
                self.cursor = 0;
            }
            self.segments.push_back(Segment { seq, len: 0 });
            self.writer = Some(file);
            sync_dir(&self.dir)?;
        }
        if self.writer.is_none() {
            let seq = self.segments.back().expect("a segment").seq;
            self.writer = Some(
                OpenOptions::new()
                    .append(true)
                    .open(self.path(seq))
                    .map_err(io)?,
            );
        }
        let w = self.writer.as_mut().expect("writer");
        w.write_all(&buf).map_err(io)?;
        // The acknowledgement to the client depends on this: the record is on disk, not in a cache.
        w.sync_data().map_err(io)?;
        self.segments.back_mut().expect("a segment").len += size;
        self.set_active(true);
        metrics::counter!("tailor_spool_records_total", "spool" => self.name.clone(), "outcome" => "spooled")
            .increment(records.len() as u64);
        self.gauges();
        Ok(())
    }

    /// Reads up to `max` records from the cursor: (key, payload) plus the cursor after them.
    fn peek(&self, max: usize) -> Result<(Vec<Record>, u64), BusError> {
        let Some(first) = self.segments.front() else {
            return Ok((vec![], 0));
        };
        let mut file = File::open(self.path(first.seq)).map_err(io)?;
        file.seek(SeekFrom::Start(self.cursor)).map_err(io)?;
        let mut reader = BufReader::new(file.take(first.len - self.cursor));
        let mut out = Vec::new();
        let mut pos = self.cursor;
        while out.len() < max {
            match decode(&mut reader).map_err(io)? {
                Some((key, payload, n)) => {
                    out.push((key, payload));
                    pos += n;
                }
                None => break,
            }
        }
        Ok((out, pos))
    }

    /// Records that everything before `pos` in the oldest segment reached the broker.
    fn advance(&mut self, pos: u64) -> Result<(), BusError> {
        self.cursor = pos;
        self.full = false;
        self.confirmed_at = tokio::time::Instant::now();
        let drained = self
            .segments
            .front()
            .is_some_and(|s| pos >= s.len && self.segments.len() > 1);
        if drained {
            let s = self.segments.pop_front().expect("segment");
            fs::remove_file(self.path(s.seq)).map_err(io)?;
            self.cursor = 0;
        } else if self.segments.len() == 1 && pos >= self.segments[0].len {
            // Fully drained: start over with an empty file rather than growing one forever.
            let s = self.segments.pop_front().expect("segment");
            self.writer = None;
            fs::remove_file(self.path(s.seq)).map_err(io)?;
            self.cursor = 0;
            self.segments.push_back(Segment {
                seq: s.seq + 1,
                len: 0,
            });
            File::create(self.path(s.seq + 1)).map_err(io)?;
        }
        write_cursor(
            &self.dir,
            self.segments.front().map_or(0, |s| s.seq),
            self.cursor,
        )?;
        self.gauges();
        Ok(())
    }

    /// How long records have been waiting with nothing confirmed (zero for an empty spool).
    fn unconfirmed(&self) -> Duration {
        if self.is_empty() {
            Duration::ZERO
        } else {
            self.confirmed_at.elapsed()
        }
    }

    fn gauges(&self) {
        metrics::gauge!("tailor_spool_bytes", "spool" => self.name.clone())
            .set(self.pending_bytes() as f64);
        metrics::gauge!("tailor_spool_unconfirmed_seconds", "spool" => self.name.clone())
            .set(self.unconfirmed().as_secs_f64());
    }
}

fn io(e: std::io::Error) -> BusError {
    BusError::Other(format!("spool: {e}"))
}

fn encode(buf: &mut Vec<u8>, key: &str, payload: &[u8]) -> Result<(), BusError> {
    let klen =
        u16::try_from(key.len()).map_err(|_| BusError::Other("spool: key too long".into()))?;
    let plen = u32::try_from(payload.len())
        .map_err(|_| BusError::Other("spool: record too large".into()))?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(key.as_bytes());
    crc.update(payload);
    buf.extend_from_slice(&plen.to_le_bytes());
    buf.extend_from_slice(&klen.to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(payload);
    Ok(())
}

/// The next record and its encoded size; `None` at the end or at a torn/corrupt tail.
fn decode(r: &mut impl Read) -> std::io::Result<Option<(String, Vec<u8>, u64)>> {
    let mut h = [0u8; HEADER];
    if let Err(e) = r.read_exact(&mut h) {
        return if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Ok(None)
        } else {
            Err(e)
        };
    }
    let plen = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
    let klen = u16::from_le_bytes(h[4..6].try_into().expect("2 bytes")) as usize;
    let crc = u32::from_le_bytes(h[6..10].try_into().expect("4 bytes"));
    let mut body = vec![0u8; klen + plen];
    if let Err(e) = r.read_exact(&mut body) {
        return if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Ok(None)
        } else {
            Err(e)
        };
    }
    if crc32fast::hash(&body) != crc {
        return Ok(None);
    }
    let payload = body.split_off(klen);
    let Ok(key) = String::from_utf8(body) else {
        return Ok(None);
    };
    Ok(Some((key, payload, (HEADER + klen + plen) as u64)))
}

fn write_cursor(dir: &Path, seq: u64, pos: u64) -> Result<(), BusError> {
    let tmp = dir.join("cursor.tmp");
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(format!("{seq} {pos}\n").as_bytes())
        .map_err(io)?;
    f.sync_data().map_err(io)?;
    fs::rename(&tmp, dir.join(CURSOR)).map_err(io)?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), BusError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// Takes the spool's lock file, waiting a little for a previous owner in this process to wind down.
fn lock_dir(dir: &Path) -> Result<File, BusError> {
    let file = File::create(dir.join("lock")).map_err(io)?;
    for _ in 0..50 {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    Err(BusError::Other(format!(
        "spool directory {} is in use by another collector; give each its own collector.spool_dir",
        dir.display()
    )))
}

/// Opens the spool directory: finds the segments, restores the cursor and cuts off a torn tail.
fn open(dir: &Path, max_bytes: u64) -> Result<State, BusError> {
    fs::create_dir_all(dir).map_err(|e| {
        BusError::Other(format!(
            "cannot create spool directory {}: {e}",
            dir.display()
        ))
    })?;
    let lock = lock_dir(dir)?;
    let mut seqs: Vec<u64> = fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".spool")?.parse().ok()
        })
        .collect();
    seqs.sort_unstable();
    let (cursor_seq, mut cursor) = match fs::read_to_string(dir.join(CURSOR)) {
        Ok(s) => {
            let mut it = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
            (it.next().unwrap_or(0), it.next().unwrap_or(0))
        }
        Err(_) => (0, 0),
    };
    let mut segments = VecDeque::new();
    for seq in seqs {
        let path = dir.join(format!("{seq:020}.spool"));
        if seq < cursor_seq {
            // Drained before the crash, deletion not yet done.
            fs::remove_file(&path).map_err(io)?;
            continue;
        }
        // Keep only whole, valid records.
        let mut reader = BufReader::new(File::open(&path).map_err(io)?);
        let mut valid = 0u64;
        while let Some((_, _, n)) = decode(&mut reader).map_err(io)? {
            valid += n;
        }
        let file_len = fs::metadata(&path).map_err(io)?.len();
        if valid < file_len {
            tracing::warn!(segment = %path.display(), valid, file_len, "cutting a torn record off the spool");
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(valid))
                .map_err(io)?;
        }
        segments.push_back(Segment { seq, len: valid });
    }
    if segments.front().is_none_or(|s| s.seq != cursor_seq) {
        cursor = 0;
    }
    if let Some(s) = segments.front() {
        cursor = cursor.min(s.len);
    }
    let mut state = State {
        dir: dir.to_path_buf(),
        name: dir
            .file_name()
            .map_or_else(|| "spool".into(), |n| n.to_string_lossy().into_owned()),
        max_bytes,
        segments,
        cursor,
        writer: None,
        active: false,
        active_flag: Arc::new(AtomicBool::new(false)),
        full: false,
        confirmed_at: tokio::time::Instant::now(),
        stall_after: STALL_AFTER,
        _lock: lock,
    };
    state.set_active(!state.is_empty());
    if state.active {
        tracing::info!(dir = %dir.display(), bytes = state.pending_bytes(), "spool holds records from before the restart; draining");
    }
    state.gauges();
    Ok(state)
}

/// A producer that spools to disk while its inner producer cannot deliver; see the module docs.
pub struct SpoolingProducer {
    inner: Arc<dyn Producer>,
    state: Arc<Mutex<State>>,
    /// The state's `active`, read by every send without taking the lock.
    active: Arc<AtomicBool>,
    wake: Arc<Notify>,
    /// The longest a send waits for the inner producer before the record goes to the spool instead.
    wait: Duration,
}

impl SpoolingProducer {
    /// Opens (or creates) the spool in `dir` and starts draining it in the background until `shutdown`.
    ///
    /// `wait` bounds every send to the inner producer (its own delivery timeout plus a margin): a
    /// producer that neither confirms nor fails in that time is treated as failed, so a request never
    /// outlives its own deadline waiting for the broker. Should that record reach the broker after all,
    /// it is there twice, and the processor drops the second by event id.
    pub fn open(
        inner: Arc<dyn Producer>,
        dir: &Path,
        max_bytes: u64,
        wait: Duration,
        shutdown: crate::Shutdown,
    ) -> Result<SpoolingProducer, BusError> {
        let opened = open(dir, max_bytes)?;
        let active = opened.active_flag.clone();
        let state = Arc::new(Mutex::new(opened));
        let wake = Arc::new(Notify::new());
        tokio::spawn(drain(
            inner.clone(),
            state.clone(),
            wake.clone(),
            wait,
            shutdown,
        ));
        Ok(SpoolingProducer {
            inner,
            state,
            active,
            wake,
            wait,
        })
    }

    /// Sets how long records may wait unconfirmed before `check` fails (default 60 s).
    pub fn stall_after(self, limit: Duration) -> Self {
        self.state.lock().expect("spool lock").stall_after = limit;
        self
    }

    /// Whether records are currently going to the spool instead of the broker.
    pub fn spooling(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Bytes waiting in the spool.
    pub fn pending_bytes(&self) -> u64 {
        self.state.lock().expect("spool lock").pending_bytes()
    }

    fn spool(&self, key: &str, payload: &[u8]) -> Result<Delivered, BusError> {
        let mut s = self.state.lock().expect("spool lock");
        s.append(&[(key, payload)])?;
        drop(s);
        self.wake.notify_one();
        Ok(SPOOLED)
    }
}

#[async_trait]
impl Producer for SpoolingProducer {
    async fn send_traced(
        &self,
        key: &str,
        payload: Vec<u8>,
        request_id: Option<&str>,
    ) -> Result<Delivered, BusError> {
        let spooled_key = || match request_id {
            Some(id) => format!("{key}{TRACE}{id}"),
            None => key.to_string(),
        };
        if self.spooling() {
            return self.spool(&spooled_key(), &payload);
        }
        match bounded(
            self.wait,
            self.inner.send_traced(key, payload.clone(), request_id),
        )
        .await
        {
            Ok(d) => Ok(d),
            Err(e) => {
                tracing::warn!(error = %e, "event bus unreachable; spooling to disk");
                self.spool(&spooled_key(), &payload)
            }
        }
    }

    async fn check(&self) -> Result<(), BusError> {
        let s = self.state.lock().expect("spool lock");
        s.gauges();
        if s.full {
            return Err(BusError::Delivery(
                "the event bus is unreachable and the spool is full".into(),
            ));
        }
        let waited = s.unconfirmed();
        if waited > s.stall_after {
            return Err(BusError::Delivery(format!(
                "the event bus has confirmed nothing for {} s while {} bytes wait in the spool (collector.spool_stall_secs = {})",
                waited.as_secs(),
                s.pending_bytes(),
                s.stall_after.as_secs()
            )));
        }
        Ok(())
    }

    async fn flush(&self, timeout: Duration) -> Result<(), BusError> {
        self.inner.flush(timeout).await
    }
}

/// `send`, failed when it takes longer than `wait`.
async fn bounded(
    wait: Duration,
    send: impl std::future::Future<Output = Result<Delivered, BusError>>,
) -> Result<Delivered, BusError> {
    tokio::time::timeout(wait, send).await.unwrap_or_else(|_| {
        Err(BusError::Delivery(format!(
            "the event bus did not answer within {wait:?}"
        )))
    })
}

/// Replays the spool into the broker, oldest first, backing off while the broker stays away.
async fn drain(
    inner: Arc<dyn Producer>,
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    wait: Duration,
    shutdown: crate::Shutdown,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let peeked = {
            let s = state.lock().expect("spool lock");
            if s.active && s.is_empty() {
                None
            } else if s.is_empty() {
                Some(Ok((vec![], 0)))
            } else {
                Some(s.peek(DRAIN_CHUNK))
            }
        };
        let (records, next) = match peeked {
            None => {
                // Nothing left: switch back to direct sends, under the lock appends also take.
                let mut s = state.lock().expect("spool lock");
                if s.is_empty() {
                    s.set_active(false);
                    tracing::info!("spool drained; sending to the event bus directly again");
                }
                continue;
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot read the spool");
                (vec![], 0)
            }
            Some(Ok(r)) => r,
        };
        if records.is_empty() && next > 0 {
            // The oldest segment is exhausted but newer ones exist: move on to them.
            if let Err(e) = state.lock().expect("spool lock").advance(next) {
                tracing::error!(error = %e, "cannot advance the spool cursor");
            } else {
                continue;
            }
        }
        if records.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let n = records.len();
        let sends = records
            .into_iter()
            .map(|(k, p)| {
                let inner = inner.clone();
                async move {
                    let (key, request_id) = match k.split_once(TRACE) {
                        Some((key, id)) => (key, Some(id)),
                        None => (k.as_str(), None),
                    };
                    bounded(wait, inner.send_traced(key, p, request_id)).await
                }
            })
            .collect::<Vec<_>>();
        let results = futures::future::join_all(sends).await;
        match results.into_iter().find_map(Result::err) {
            None => {
                let name = state.lock().expect("spool lock").name.clone();
                metrics::counter!("tailor_spool_records_total", "spool" => name, "outcome" => "drained")
                    .increment(n as u64);
                backoff = Duration::from_millis(200);
                if let Err(e) = state.lock().expect("spool lock").advance(next) {
                    tracing::error!(error = %e, "cannot advance the spool cursor");
                }
            }
            Some(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "spool drain: broker still unreachable");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        if shutdown.is_cancelled() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A bus end that records what it got and can be switched off, to drive the spool's state machine.
    /// The real-broker behaviour (a Kafka outage and return) is covered by the collector's tests.
    #[derive(Default)]
    struct Switchable {
        down: AtomicBool,
        /// Sends neither confirm nor fail (a broker that accepts the connection and never answers).
        hangs: AtomicBool,
        got: Mutex<Vec<Record>>,
        /// The request id each record in `got` came with.
        ids: Mutex<Vec<Option<String>>>,
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[async_trait]
    impl Producer for Switchable {
        async fn send_traced(
            &self,
            key: &str,
            payload: Vec<u8>,
            request_id: Option<&str>,
        ) -> Result<Delivered, BusError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(BusError::Delivery("down".into()));
            }
            if self.hangs.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let mut g = self.got.lock().unwrap();
            g.push((key.to_string(), payload));
            self.ids
                .lock()
                .unwrap()
                .push(request_id.map(str::to_string));
            Ok(Delivered {
                partition: 0,
                offset: g.len() as i64 - 1,
            })
        }
        async fn check(&self) -> Result<(), BusError> {
            Ok(())
        }
        async fn flush(&self, _: Duration) -> Result<(), BusError> {
            Ok(())
        }
    }

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(crate::testkit::unique("spool"));
        fs::create_dir_all(&d).unwrap();
        d
    }

    async fn until(f: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not reached"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_the_broker_never_answers_goes_to_the_spool_within_the_wait() {
        let dir = tmp();
        let bus = Arc::new(Switchable::default());
        let shutdown = crate::Shutdown::new();
        let p = SpoolingProducer::open(bus.clone(), &dir, 1 << 20, WAIT, shutdown.clone()).unwrap();
        bus.hangs.store(true, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let sent = tokio::time::timeout(WAIT * 3, p.send("k", b"0".to_vec())).await;
        assert_eq!(sent.expect("the send is bounded").unwrap(), SPOOLED);
        let waited = started.elapsed();
        assert!(
            waited >= WAIT && waited < WAIT + Duration::from_secs(1),
            "{waited:?}"
        );
        assert!(p.spooling());
        // The drainer's sends are bounded too: once the broker answers again, the spool empties.
        bus.hangs.store(false, Ordering::SeqCst);
        until(|| !p.spooling()).await;
        assert_eq!(bus.got.lock().unwrap().len(), 1);
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn records_waiting_unconfirmed_beyond_the_limit_fail_readiness() {
        let dir = tmp();
        let bus = Arc::new(Switchable::default());
        let shutdown = crate::Shutdown::new();
        let limit = Duration::from_secs(30);
        let p = SpoolingProducer::open(bus.clone(), &dir, 1 << 20, WAIT, shutdown.clone())
            .unwrap()
            .stall_after(limit);
        bus.down.store(true, Ordering::SeqCst);
        assert_eq!(p.send("k", b"0".to_vec()).await.unwrap(), SPOOLED);
        assert!(p.check().await.is_ok(), "waiting, not yet for long");
        tokio::time::advance(limit + Duration::from_secs(1)).await;
        let err = p.check().await.unwrap_err().to_string();
        assert!(err.contains("confirmed nothing"), "{err}");
        bus.down.store(false, Ordering::SeqCst);
        until(|| !p.spooling()).await;
        assert!(p.check().await.is_ok(), "drained");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_spooled_record_keeps_its_request_id_and_its_key() {
        let dir = tmp();
        let bus = Arc::new(Switchable::default());
        let shutdown = crate::Shutdown::new();
        let p = SpoolingProducer::open(bus.clone(), &dir, 1 << 20, WAIT, shutdown.clone()).unwrap();
        p.send_traced("demo/a", b"0".to_vec(), Some("req-0"))
            .await
            .unwrap();
        bus.down.store(true, Ordering::SeqCst);
        assert_eq!(
            p.send_traced("demo/a", b"1".to_vec(), Some("req-1"))
                .await
                .unwrap(),
            SPOOLED
        );
        p.send("demo/b", b"2".to_vec()).await.unwrap();
        bus.down.store(false, Ordering::SeqCst);
        until(|| !p.spooling()).await;
        let keys: Vec<String> = bus
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            keys,
            ["demo/a", "demo/a", "demo/b"],
            "keys come out as they went in"
        );
        assert_eq!(
            *bus.ids.lock().unwrap(),
            [Some("req-0".to_string()), Some("req-1".to_string()), None]
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn spools_while_down_and_drains_in_order_when_back() {
        let dir = tmp();
        let bus = Arc::new(Switchable::default());
        let shutdown = crate::Shutdown::new();
        let p = SpoolingProducer::open(bus.clone(), &dir, 1 << 20, WAIT, shutdown.clone()).unwrap();
        p.send("k", b"0".to_vec()).await.unwrap();
        bus.down.store(true, Ordering::SeqCst);
        for i in 1..=50u8 {
            assert_eq!(p.send("k", vec![b'0' + i % 10]).await.unwrap(), SPOOLED);
        }
        assert!(p.spooling());
        assert!(p.pending_bytes() > 0);
        bus.down.store(false, Ordering::SeqCst);
        until(|| !p.spooling()).await;
        let got = bus.got.lock().unwrap().clone();
        assert_eq!(got.len(), 51);
        let expected: Vec<u8> = std::iter::once(b'0')
            .chain((1..=50u8).map(|i| b'0' + i % 10))
            .collect();
        assert_eq!(got.iter().map(|(_, p)| p[0]).collect::<Vec<_>>(), expected);
        // Direct again.
        p.send("k", b"x".to_vec()).await.unwrap();
        assert_eq!(bus.got.lock().unwrap().len(), 52);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_full_spool_refuses_and_a_reopened_spool_drains_what_it_kept() {
        let dir = tmp();
        let bus = Arc::new(Switchable::default());
        bus.down.store(true, Ordering::SeqCst);
        let shutdown = crate::Shutdown::new();
        let p = SpoolingProducer::open(bus.clone(), &dir, 200, WAIT, shutdown.clone()).unwrap();
        let mut accepted = 0;
        for i in 0..100u8 {
            match p.send("key", vec![i; 20]).await {
                Ok(_) => accepted += 1,
                Err(e) => {
                    assert!(e.to_string().contains("spool is full"), "{e}");
                    break;
                }
            }
        }
        assert!(accepted > 0 && accepted < 100, "accepted {accepted}");
        assert!(p.check().await.is_err());
        shutdown.cancel();
        drop(p);
        // Let the drainer see the shutdown and release the spool's lock.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A torn record at the tail (a crash mid-append) is cut off on reopen.
        let seg = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(".spool"))
            .unwrap()
            .path();
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&[7, 0, 0])
            .unwrap();

        let bus2 = Arc::new(Switchable::default());
        let shutdown2 = crate::Shutdown::new();
        let p2 = SpoolingProducer::open(bus2.clone(), &dir, 200, WAIT, shutdown2.clone()).unwrap();
        until(|| bus2.got.lock().unwrap().len() == accepted).await;
        until(|| !p2.spooling()).await;
        let got = bus2.got.lock().unwrap().clone();
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, (k, p))| k == "key" && p == &vec![i as u8; 20]));
        shutdown2.cancel();
    }
}
