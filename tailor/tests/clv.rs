//! The lifetime-value models through the whole pipeline, validated against the literature: the CDNOW
//! sample (`../shared/data/cdnow/`) is written as an orders CSV, loaded with `tailor import` through the
//! collector and the real broker into the processor's Redis profiles, and `tailor clv fit` on the
//! papers' 39-week calibration window must reproduce Fader, Hardie & Lee (2005) within 1%:
//! BG/NBD r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; Gamma-Gamma p = 6.25, q = 3.74, gamma = 15.44.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;
use tailor_infra::testkit;

fn cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tailor {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdnow_through_the_pipeline_reproduces_the_published_parameters() {
    let raw = std::fs::read_to_string(testkit::shared_data("cdnow/CDNOW_sample.txt")).unwrap();
    let mut csv = String::from("member_id,date,revenue\n");
    let mut days = BTreeSet::new();
    for line in raw.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        writeln!(csv, "cdnow-{},{},{}", f[1], f[2], f[4]).unwrap();
        days.insert((f[1], f[2]));
    }
    let file = testkit::temp_dir("cdnow").join("cdnow-orders.csv");
    std::fs::write(&file, csv).unwrap();

    let app = support::start(testkit::real_config()).await;
    let out = cli(&[
        "import",
        "--site",
        "demo",
        file.to_str().unwrap(),
        "--url",
        &app.base,
    ]);
    assert!(out.contains("6919 events accepted, 0 rejected"), "{out}");

    // Wait until the processor has applied every purchase day, then fit on the calibration window.
    let path = "/admin/clv/fit?site=demo&calibration_end=1997-09-30";
    let fit = app.until(path, |f| f["purchase_days"] == days.len()).await;
    let printed: Value = serde_json::from_str(&cli(&[
        "clv",
        "fit",
        "--site",
        "demo",
        "--calibration-end",
        "1997-09-30",
        "--url",
        &app.base,
    ]))
    .unwrap();
    assert_eq!(printed, fit, "the CLI prints the admin endpoint's answer");
    assert_eq!(fit["customers"], 2357, "{fit}");
    assert_eq!(fit["repeat_customers"], 946, "{fit}");
    let published = [
        ("r", 0.243),
        ("alpha", 4.414),
        ("a", 0.793),
        ("b", 2.426),
        ("p", 6.25),
        ("q", 3.74),
        ("gamma", 15.44),
    ];
    for (name, want) in published {
        let got = fit[name].as_f64().unwrap_or(f64::NAN);
        assert!(
            ((got - want) / want).abs() <= 0.01,
            "{name} = {got}, published {want} (more than 1% apart): {fit}"
        );
    }

    // Importing the same file again counts nothing twice.
    cli(&[
        "import",
        "--site",
        "demo",
        file.to_str().unwrap(),
        "--url",
        &app.base,
    ]);
    let (_, again) = app.get(path).await;
    assert_eq!(again["purchase_days"], fit["purchase_days"]);
    assert_eq!(again["r"], fit["r"]);
    app.stop().await;
}
