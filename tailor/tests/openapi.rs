//! `GET /openapi.json` describes every route `tailor run` serves: each `.route(...)` of the routers in
//! the source (read from the source files, so a new route without documentation fails here) is in
//! the document with each of its methods, every documented operation is one the router answers, and
//! the document passes the `openapi-spec-validator` of PyPI as OpenAPI 3.1 (installed by
//! scripts/test.sh into tests/clients/.venv).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use support::start;
use tailor_core::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_described_and_the_document_is_valid() {
    let app = start(Config::default()).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let routes = support::source_routes();
    assert!(routes.len() >= 25, "{routes:?}");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| support::METHODS.contains(&k.as_str()))
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );

    // Every documented operation is one the router serves (axum answers 405 for a method a path
    // does not have, and a 404 for a path it does not know, which the server gives the generic
    // JSON error body; a handler's own 404 names what it did not find). The body is declared
    // JSON so that the admin guard's 415 does not stand in front of the routing.
    for (path, method) in &documented {
        let concrete = path
            .replace("{member}", "m-1")
            .replace("{name}", "vip")
            .replace("{call}", "track");
        let r = app
            .http
            .request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{concrete}", app.base),
            )
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        assert_ne!(status, 405, "{method} {path}");
        assert_ne!(status, 415, "{method} {path}");
        let unrouted = serde_json::from_slice::<serde_json::Value>(&body)
            .map_or(true, |b| b["error"]["message"] == "Not Found");
        assert!(status != 404 || !unrouted, "{method} {path}: no such route");
    }
    // Each operation says what its errors look like.
    let recs = &doc["paths"]["/v1/recommendations"]["get"];
    assert!(
        recs["responses"]["400"]["content"]["application/json"].is_object(),
        "{recs}"
    );
    assert!(recs["parameters"].as_array().unwrap().len() >= 4, "{recs}");
    assert!(doc["components"]["schemas"]["Recommendation"].is_object());

    let venv = root.join("tests/clients/.venv/bin/python");
    assert!(
        venv.exists(),
        "tests/clients/.venv is missing: run scripts/test.sh (it installs tests/clients/requirements.txt)"
    );
    let file = tailor_infra::testkit::temp_dir("openapi").join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(venv)
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import OpenAPIV31SpecValidator\n\
             doc = json.load(open(sys.argv[1]))\n\
             errors = [e.message for e in OpenAPIV31SpecValidator(doc).iter_errors()]\n\
             print('\\n'.join(errors))\n\
             sys.exit(1 if errors else 0)",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}
