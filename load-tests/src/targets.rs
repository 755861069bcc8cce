//! Issue 11's performance targets, judged from the reports of runs (`tailor-load --report FILE`):
//! each target against the baseline or ceiling measured in the same run, the figure it was judged
//! on, and whether it holds. `load-tests/targets.sh` makes the runs and prints the judgement, so the
//! table in docs/benchmarks.md is reproduced by one command instead of being copied by hand.
//!
//! A report is the JSON object [`Report`] builds as the scenarios run; a target whose scenarios a
//! report lacks is not judged on it, and one that no report measures says so.

use serde_json::{json, Map, Value};

/// What one run measured, as `--report` writes it.
#[derive(Debug, Default)]
pub struct Report(Map<String, Value>);

impl Report {
    /// A report of a run on `mode` (`embedded`, or `kafka` for the broker and Redis).
    pub fn new(mode: &str, batch: usize, concurrency: usize, seconds: u64) -> Report {
        let mut r = Report::default();
        r.set("mode", json!(mode));
        r.set("batch", json!(batch));
        r.set("concurrency", json!(concurrency));
        r.set("seconds", json!(seconds));
        r.set("scenarios", json!({}));
        r
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.0.insert(key.into(), value);
    }

    /// One closed-loop scenario's row (`baseline`, `ingest`, `recommend`, `bare-ingest`, ...).
    #[allow(clippy::too_many_arguments)]
    pub fn scenario(
        &mut self,
        key: &str,
        requests_per_sec: f64,
        events_per_sec: f64,
        p50_ms: f64,
        p99_ms: f64,
        p999_ms: f64,
        errors: u64,
    ) {
        let row = json!({"requests_per_sec": requests_per_sec, "events_per_sec": events_per_sec,
            "p50_ms": p50_ms, "p99_ms": p99_ms, "p999_ms": p999_ms, "errors": errors});
        if let Some(Value::Object(s)) = self.0.get_mut("scenarios") {
            s.insert(key.into(), row);
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.0).expect("a report serialises")
    }

    pub fn parse(text: &str) -> anyhow::Result<Report> {
        match serde_json::from_str(text)? {
            Value::Object(m) => Ok(Report(m)),
            other => anyhow::bail!("a report is a JSON object, not {other}"),
        }
    }

    fn mode(&self) -> &str {
        self.0.get("mode").and_then(Value::as_str).unwrap_or("?")
    }

    /// A number at a path of keys, if the run measured it.
    fn num(&self, path: &[&str]) -> Option<f64> {
        let mut v = self.0.get(path[0])?;
        for k in &path[1..] {
            v = v.get(k)?;
        }
        v.as_f64()
    }

    fn rate(&self, scenario: &str) -> Option<f64> {
        self.num(&["scenarios", scenario, "requests_per_sec"])
    }
}

/// One target's judgement.
#[derive(Debug, PartialEq)]
pub struct Verdict {
    pub target: &'static str,
    /// What it was judged on, per run (`embedded: ...; kafka: ...`).
    pub measured: String,
    /// `Some(true)` holds on every run that measured it, `None` no run measured it.
    pub holds: Option<bool>,
}

/// Each run's figure for a target: `(mode, text, holds)`, for the runs that measured it.
type Judged = Vec<(String, String, bool)>;

fn verdict(target: &'static str, judged: Judged, unmeasured: &str) -> Verdict {
    if judged.is_empty() {
        return Verdict {
            target,
            measured: unmeasured.into(),
            holds: None,
        };
    }
    Verdict {
        target,
        measured: judged
            .iter()
            .map(|(mode, text, _)| format!("{mode}: {text}"))
            .collect::<Vec<_>>()
            .join("; "),
        holds: Some(judged.iter().all(|(_, _, ok)| *ok)),
    }
}

/// Every target of issue 11, judged on `reports`.
pub fn judge(reports: &[Report]) -> Vec<Verdict> {
    let each = |f: &dyn Fn(&Report) -> Option<(String, bool)>| -> Judged {
        reports
            .iter()
            .filter_map(|r| f(r).map(|(text, ok)| (r.mode().to_string(), text, ok)))
            .collect()
    };
    vec![
        verdict(
            "recommendations ≥ 0.30x of `/healthz`",
            each(&|r| {
                let (rec, base) = (r.rate("recommend")?, r.rate("baseline")?);
                let x = rec / base;
                Some((format!("{x:.3}x ({rec:.0} of {base:.0}/s)"), x >= 0.30))
            }),
            "no run with recommend and baseline",
        ),
        verdict(
            "recommendations p99 ≤ 5 ms, p99.9 ≤ 15 ms",
            each(&|r| {
                let p99 = r.num(&["scenarios", "recommend", "p99_ms"])?;
                let p999 = r.num(&["scenarios", "recommend", "p999_ms"])?;
                Some((
                    format!("{p99:.1} / {p999:.1} ms"),
                    p99 <= 5.0 && p999 <= 15.0,
                ))
            }),
            "no run with recommend",
        ),
        verdict(
            "recommendations within 2x of a bare handler making the same round trip",
            each(&|r| {
                let (rec, bare) = (r.rate("recommend")?, r.rate("bare-recommend")?);
                let x = rec / bare;
                Some((format!("{x:.2}x ({rec:.0} of {bare:.0}/s)"), x >= 0.5))
            }),
            "no run with bare-recommend (it needs Redis)",
        ),
        verdict(
            "processor embedded ≥ 0.5x of `/healthz` in events/s",
            each(&|r| {
                if r.mode() != "embedded" {
                    return None;
                }
                let (p, base) = (
                    r.num(&["processor", "events_per_sec"])?,
                    r.rate("baseline")?,
                );
                let x = p / base;
                Some((
                    format!("{x:.3}x ({p:.0} events/s of {base:.0}/s)"),
                    x >= 0.5,
                ))
            }),
            "no embedded run with ingest and baseline",
        ),
        verdict(
            "processor on Kafka and Redis ≥ 25k events/s, within 3x of a same-run ceiling",
            each(&|r| {
                if r.mode() != "kafka" {
                    return None;
                }
                let p = r.num(&["processor", "events_per_sec"])?;
                let c = r.num(&["ceiling", "events_per_sec"])?;
                let x = p / c;
                Some((
                    format!("{p:.0} events/s, {x:.3}x of the ceiling's {c:.0}"),
                    p >= 25_000.0 && x >= 1.0 / 3.0,
                ))
            }),
            "no Kafka run with the ceiling",
        ),
        verdict(
            "collector ≥ 0.6x of a bare axum handler (batches of 20), p99 < 10 ms at half load",
            each(&|r| {
                let (ing, bare) = (
                    r.num(&["scenarios", "ingest", "events_per_sec"])?,
                    r.num(&["scenarios", "bare-ingest", "events_per_sec"])?,
                );
                let open = r.num(&["ingest_open", "p99_ms"])?;
                let batch = r.num(&["batch"]).unwrap_or(0.0);
                let x = ing / bare;
                // Where there is a broker: against the bare handler that also writes each event to
                // it (acks=all), the durable work every collector does.
                let durable = r
                    .num(&["scenarios", "bare-produce", "events_per_sec"])
                    .map(|p| {
                        format!(
                            " ({:.2}x of the bare handler producing to the broker)",
                            ing / p
                        )
                    })
                    .unwrap_or_default();
                Some((
                    format!(
                        "{x:.2}x ({ing:.0} of {bare:.0} events/s, batches of {batch:.0}){durable}, open-loop p99 {open:.1} ms"
                    ),
                    x >= 0.6 && open < 10.0 && batch == 20.0,
                ))
            }),
            "no run with ingest, bare-ingest and ingest-open",
        ),
        verdict(
            "freshness p99 < 250 ms at half the processor's load",
            each(&|r| {
                let p99 = r.num(&["freshness", "p99_ms"])?;
                let rate = r.num(&["freshness", "background_per_sec"])?;
                let missed = r.num(&["freshness", "missed"]).unwrap_or(0.0);
                Some((
                    format!("p99 {p99:.0} ms at {rate:.0} page views/s, {missed:.0} probes missed"),
                    p99 < 250.0 && missed == 0.0,
                ))
            }),
            "no run with freshness",
        ),
        verdict(
            "Redis ≤ 1 KB per member",
            each(&|r| {
                let mean = r.num(&["memory", "mean_bytes"])?;
                let p99 = r.num(&["memory", "p99_bytes"])?;
                Some((format!("mean {mean:.0} B, p99 {p99:.0} B"), mean <= 1024.0))
            }),
            "no run with memory (it needs Redis)",
        ),
        verdict(
            "RSS flat under load",
            Vec::new(),
            "judged by the soak, not these runs (docs/reliability.md, Soak)",
        ),
    ]
}

/// The judgement as a Markdown table.
pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = String::from("| target | measured | holds |\n|---|---|---|\n");
    for v in verdicts {
        let holds = match v.holds {
            Some(true) => "**yes**",
            Some(false) => "no",
            None => "not measured",
        };
        out.push_str(&format!("| {} | {} | {holds} |\n", v.target, v.measured));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: &str, recommend: f64, p99: f64) -> Report {
        let mut r = Report::new(mode, 20, 8, 8);
        r.scenario("baseline", 10_000.0, 0.0, 0.1, 1.0, 2.0, 0);
        r.scenario("recommend", recommend, 0.0, 1.0, p99, 9.0, 0);
        r.scenario("ingest", 1_000.0, 20_000.0, 3.0, 9.0, 12.0, 0);
        r.scenario("bare-ingest", 2_000.0, 40_000.0, 1.0, 2.0, 3.0, 0);
        r.set("ingest_open", json!({"p99_ms": 9.5}));
        r.set("processor", json!({"events_per_sec": 4_000.0}));
        r
    }

    /// The verdict on the target whose name starts with `target`.
    fn verdict_on<'a>(verdicts: &'a [Verdict], target: &str) -> &'a Verdict {
        verdicts
            .iter()
            .find(|v| v.target.starts_with(target))
            .unwrap_or_else(|| panic!("no target {target:?}"))
    }

    fn holds(verdicts: &[Verdict], target: &str) -> Option<bool> {
        verdict_on(verdicts, target).holds
    }

    #[test]
    fn a_target_holds_only_where_every_run_that_measured_it_meets_it() {
        let both = [run("embedded", 3_000.0, 4.0), run("kafka", 2_000.0, 4.0)];
        let v = judge(&both);
        assert_eq!(holds(&v, "recommendations ≥"), Some(false), "0.2x on kafka");
        assert_eq!(holds(&v, "recommendations p99"), Some(true));
        assert_eq!(holds(&v, "processor embedded"), Some(false), "4k of 10k");
        // Reached from the report's figures, at the boundaries.
        let v = judge(&[run("embedded", 3_000.0, 5.0)]);
        assert_eq!(holds(&v, "recommendations ≥"), Some(true));
        assert_eq!(holds(&v, "recommendations p99"), Some(true));
        let v = judge(&[run("embedded", 3_000.0, 5.01)]);
        assert_eq!(holds(&v, "recommendations p99"), Some(false));
        // 0.5x of the bare handler and an open-loop p99 under 10 ms, but the target's batches are 20.
        assert_eq!(holds(&v, "collector"), Some(false), "0.5x < 0.6x");
        let mut fast = run("embedded", 3_000.0, 4.0);
        fast.scenario("ingest", 1_000.0, 30_000.0, 3.0, 9.0, 12.0, 0);
        assert_eq!(holds(&judge(&[fast]), "collector"), Some(true));
        let mut tens = run("embedded", 3_000.0, 4.0);
        tens.set("batch", json!(10));
        tens.scenario("ingest", 1_000.0, 30_000.0, 3.0, 9.0, 12.0, 0);
        assert_eq!(holds(&judge(&[tens]), "collector"), Some(false));
    }

    #[test]
    fn what_no_run_measured_is_said_not_judged() {
        let v = judge(&[run("embedded", 3_000.0, 4.0)]);
        assert_eq!(holds(&v, "recommendations within 2x"), None);
        assert_eq!(holds(&v, "processor on Kafka"), None);
        assert_eq!(holds(&v, "Redis ≤ 1 KB"), None);
        assert_eq!(holds(&v, "RSS flat"), None);
        let t = table(&v);
        assert!(
            t.contains("| no run with bare-recommend (it needs Redis) | not measured |"),
            "{t}"
        );
        // The report survives its JSON.
        let r = run("kafka", 1.0, 1.0);
        assert_eq!(Report::parse(&r.to_json()).unwrap().0, r.0);
        assert!(Report::parse("[1]").is_err());
    }

    #[test]
    fn the_kafka_targets_read_the_ceiling_memory_and_freshness() {
        let mut r = run("kafka", 2_000.0, 4.0);
        r.scenario("bare-recommend", 3_000.0, 0.0, 1.0, 2.0, 3.0, 0);
        r.scenario("bare-produce", 1_250.0, 25_000.0, 3.0, 8.0, 10.0, 0);
        r.set("ceiling", json!({"events_per_sec": 15_000.0}));
        r.set(
            "memory",
            json!({"mean_bytes": 1_000.0, "p99_bytes": 2_000.0}),
        );
        r.set(
            "freshness",
            json!({"p99_ms": 200.0, "background_per_sec": 3000.0, "missed": 0}),
        );
        let v = judge(&[r]);
        assert_eq!(holds(&v, "recommendations within 2x"), Some(true));
        assert_eq!(holds(&v, "processor on Kafka"), Some(false), "4k < 25k");
        assert_eq!(holds(&v, "Redis ≤ 1 KB"), Some(true));
        assert_eq!(holds(&v, "freshness"), Some(true));
        assert_eq!(holds(&v, "processor embedded"), None, "not an embedded run");
        let collector = verdict_on(&v, "collector");
        assert!(
            collector
                .measured
                .contains("(0.80x of the bare handler producing to the broker)"),
            "20,000 of 25,000 events/s: {}",
            collector.measured
        );
    }
}
