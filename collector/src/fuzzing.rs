//! Entry points for fuzzing every parser an outsider (or a shop's operator) can reach: the JSON API,
//! the Snowplow tp2 body and pixel query, the Segment HTTP API, the configuration file, the segment
//! rule language, campaigns and business rules. Each takes arbitrary bytes and drives them as far as
//! the service would (mapping, then validation into an event; parsing, then checking and
//! evaluating a rule), and must never panic, whatever the bytes. An error answer is fine: it is what
//! the service turns into a 400. Each says whether the input was accepted all the way (the smoke
//! run checks that its seeds are, so mutants start from the deepest paths).
//!
//! Two drivers use them: `fuzz/` (cargo-fuzz with libFuzzer, on a nightly toolchain, for long runs:
//! docs/reliability.md) and the smoke run in the test suite below (a seeded mutation fuzzer on
//! stable, a few seconds per target), which fails with the offending input.

use crate::segment::Call;
use crate::{ingest, snowplow};
use tailor_core::campaign::{self, CampaignDef};
use tailor_core::config::Config;
use tailor_core::models::{Facts, LifecycleRules, SiteModels};
use tailor_core::rules::{self, RuleDef};
use tailor_core::segment::{Rule, Subject};
use tailor_core::state::SubjectState;

/// A fuzz target: arbitrary bytes in; whether they were accepted all the way.
pub type Target = fn(&[u8]) -> bool;

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: [(&str, Target); 8] = [
    ("api", api),
    ("snowplow_post", snowplow_post),
    ("snowplow_pixel", snowplow_pixel),
    ("segment", segment),
    ("config", config),
    ("segment_rule", segment_rule),
    ("campaign", campaign),
    ("business_rule", business_rule),
];

/// Validates every mapped event; whether all of them are valid events.
fn validate(mapped: Vec<crate::mapped::Mapped>) -> bool {
    let now = chrono::Utc::now();
    let mut all = !mapped.is_empty();
    for m in mapped {
        all &= m.result.is_ok_and(|raw| raw.validate(now).is_ok());
    }
    all
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `POST /v1/events`.
pub fn api(data: &[u8]) -> bool {
    ingest::parse_body(data, 500).is_ok_and(validate)
}

/// `POST /com.snowplowanalytics.snowplow/tp2`.
pub fn snowplow_post(data: &[u8]) -> bool {
    snowplow::from_post(data, &Config::default()).is_ok_and(validate)
}

/// `GET /i?...` (the query string).
pub fn snowplow_pixel(data: &[u8]) -> bool {
    text(data).is_some_and(|q| validate(vec![snowplow::from_query(q, &Config::default())]))
}

/// The Segment HTTP API, every call.
pub fn segment(data: &[u8]) -> bool {
    let config = Config::default();
    let mut any = false;
    for call in [
        Call::Track,
        Call::Page,
        Call::Screen,
        Call::Identify,
        Call::Alias,
        Call::Group,
        Call::Batch,
    ] {
        if let Ok(m) = crate::segment::from_body(call, data, Some("demo"), &config) {
            any |= validate(m);
        }
    }
    any
}

/// The configuration file.
pub fn config(data: &[u8]) -> bool {
    matches!(text(data).map(Config::from_toml), Some(Ok(c)) if c.validate().is_ok())
}

/// A segment rule, parsed and evaluated on a member.
pub fn segment_rule(data: &[u8]) -> bool {
    let Some(Ok(rule)) = text(data).map(Rule::parse) else {
        return false;
    };
    let state = SubjectState::default();
    let facts = Facts::of(
        &state,
        &SiteModels::default(),
        &LifecycleRules::default(),
        0,
    );
    rule.matches(&Subject {
        facts: &facts,
        state: &state,
        now_ms: 0,
        half_life_ms: 1,
    });
    true
}

/// A campaign as `PUT /admin/campaigns/{id}` takes it.
pub fn campaign(data: &[u8]) -> bool {
    let Ok(mut d) = serde_json::from_slice::<CampaignDef>(data) else {
        return false;
    };
    if d.id.is_empty() {
        d.id = "fuzz".into();
    }
    campaign::check(&d).is_ok()
}

/// A business rule as `PUT /admin/rules/{name}` takes it.
pub fn business_rule(data: &[u8]) -> bool {
    let Ok(mut d) = serde_json::from_slice::<RuleDef>(data) else {
        return false;
    };
    if d.name.is_empty() {
        d.name = "fuzz".into();
    }
    rules::check(&d).is_ok()
}

#[cfg(test)]
mod smoke {
    //! A seeded mutation fuzzer: from valid inputs, thousands of mutants per target (bit flips,
    //! insertions of bytes and of tokens that parsers trip on, deletions, duplications, splices).

    use super::TARGETS;
    use std::time::{Duration, Instant};

    /// Seeds: the valid inputs in `fuzz/seeds/<target>/` (libFuzzer's runs start from them too).
    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds in {}", dir.display());
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    /// Tokens that parsers trip on.
    const TOKENS: [&[u8]; 18] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"\\",
        b"\\u0000",
        b"\\ud800",
        b"1e999",
        b"-0",
        b"18446744073709551616",
        b"NaN",
        b"\xff\xfe",
        b"\xe2\x80\xae",
        b"%",
        b"%ff",
        b"((((((((",
        b"\0",
    ];

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn mutate(input: &mut Vec<u8>, rng: &mut Rng, pool: &[Vec<u8>]) {
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len() + 1);
            match rng.below(7) {
                0 if !input.is_empty() => {
                    let i = rng.below(input.len());
                    input[i] ^= 1 << rng.below(8);
                }
                1 => input.insert(at, rng.next() as u8),
                2 if !input.is_empty() => {
                    let end = (at + rng.below(16)).min(input.len());
                    input.drain(at.min(end)..end);
                }
                3 => {
                    let t = TOKENS[rng.below(TOKENS.len())];
                    input.splice(at..at, t.iter().copied());
                }
                4 if !input.is_empty() => {
                    // Duplicate a chunk (deep nesting, repeated fields).
                    let start = rng.below(input.len());
                    let end = (start + 1 + rng.below(32)).min(input.len());
                    let chunk: Vec<u8> = input[start..end].to_vec();
                    for _ in 0..1 + rng.below(8) {
                        input.splice(at..at, chunk.iter().copied());
                    }
                }
                5 => {
                    // Splice in part of another seed.
                    let other = &pool[rng.below(pool.len())];
                    let start = rng.below(other.len());
                    let end = (start + rng.below(64)).min(other.len());
                    input.splice(at..at, other[start..end].iter().copied());
                }
                _ => {
                    if input.len() > 8 && rng.below(2) == 0 {
                        input.truncate(rng.below(input.len()));
                    }
                }
            }
        }
        input.truncate(64 * 1024);
    }

    #[test]
    fn every_parser_survives_mutated_inputs() {
        let per_target = Duration::from_millis(
            std::env::var("TAILOR_FUZZ_SMOKE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1500),
        );
        // Quiet: a mutant that panics is reported below with its bytes, not by the default hook.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut failures = Vec::new();
        for (name, target) in TARGETS {
            let pool = seeds(name);
            let mut rng = Rng(0x7a11_0f00 ^ name.len() as u64);
            let (started, mut runs, mut accepted) = (Instant::now(), 0u64, 0u64);
            // Every seed as is, then mutants until the time is up.
            for seed in &pool {
                match std::panic::catch_unwind(|| target(seed)) {
                    Ok(true) => {}
                    Ok(false) => failures.push(format!(
                        "{name}: a seed is refused, so mutants start shallow: {:?}",
                        String::from_utf8_lossy(seed)
                    )),
                    Err(_) => {
                        failures.push(format!("{name}: seed {:?}", String::from_utf8_lossy(seed)))
                    }
                }
            }
            let mut corpus: Vec<Vec<u8>> = pool.clone();
            while started.elapsed() < per_target {
                let mut input = corpus[rng.below(corpus.len())].clone();
                mutate(&mut input, &mut rng, &pool);
                runs += 1;
                let bytes = input.clone();
                match std::panic::catch_unwind(move || target(&bytes)) {
                    Ok(ok) => accepted += u64::from(ok),
                    Err(_) => {
                        failures.push(format!("{name}: {:?}", String::from_utf8_lossy(&input)));
                        break;
                    }
                }
                // Keep some mutants to mutate further (a crude corpus growth).
                if corpus.len() < 256 && rng.below(8) == 0 {
                    corpus.push(input);
                }
            }
            assert!(runs > 100, "{name}: only {runs} inputs in {per_target:?}");
            println!("{name}: {runs} inputs, {accepted} accepted all the way");
        }
        std::panic::set_hook(hook);
        assert!(failures.is_empty(), "panics on: {failures:#?}");
    }
}
