use super::*;

#[test]
fn defaults_are_valid_and_embedded() {
    let c = Config::default();
    c.validate().unwrap();
    assert!(c.kafka.brokers.is_none() && c.redis.url.is_none());
    assert!(c.has_site(&SiteId::parse("demo").unwrap()));
}

#[test]
fn the_delivery_timeout_fits_in_the_request_deadline() {
    let kafka = "[kafka]\nbrokers = \"localhost:9092\"\ndelivery_timeout_ms = 9500\n";
    let e = Config::from_toml(kafka).unwrap().validate().unwrap_err();
    assert_eq!(e.key, "kafka.delivery_timeout_ms");
    assert!(e.reason.contains("10000 ms"), "{e}");
    let c = Config::from_toml(&format!("{kafka}[collector]\nrequest_timeout_ms = 11000\n"));
    c.unwrap().validate().unwrap();
    let e = Config::from_toml("[kafka]\nfetch_wait_ms = 0\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "kafka.fetch_wait_ms", "{e}");
    assert!(e.to_string().contains("1 to 500"), "{e}");
    // Embedded, nothing waits for a broker.
    let c = Config::from_toml("[kafka]\ndelivery_timeout_ms = 9500\n").unwrap();
    c.validate().unwrap();
}

#[test]
fn the_kept_neighbours_cover_what_the_recommender_reads() {
    let e = Config::from_toml("[processor]\nneighbours_kept = 20\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "processor.neighbours_kept");
    assert!(e.reason.contains("(25)"), "{e}");
    let c = "[processor]\nneighbours_kept = 20\n[recommender]\nneighbours_per_seed = 20\n";
    Config::from_toml(c).unwrap().validate().unwrap();
}

#[test]
fn partial_file_keeps_defaults() {
    let c = Config::from_toml("[kafka]\nbrokers = \"localhost:9092\"\n").unwrap();
    assert_eq!(c.kafka.brokers.as_deref(), Some("localhost:9092"));
    assert_eq!(c.kafka.topic, "tailor.events");
    c.validate().unwrap();
}

#[test]
fn unknown_keys_are_named_by_their_full_path() {
    let e = Config::from_toml("[kafka]\nbrokerz = \"x\"\n").unwrap_err();
    assert!(e.reason.contains("brokerz"), "{e}");
    assert_eq!(e.key, "kafka.brokerz");
    let e = Config::from_toml("[collector]\nfoo = 1\n").unwrap_err();
    assert_eq!(e.key, "collector.foo", "{e}");
    let e = Config::from_toml("colour = 1\n").unwrap_err();
    assert_eq!(e.key, "colour", "{e}");
    let e =
        Config::from_toml("[[sites]]\nid = \"a\"\n[[sites]]\nid = \"b\"\nkey = 1\n").unwrap_err();
    assert_eq!(e.key, "sites[1].key", "{e}");
    let e = Config::from_toml("[processor]\nbatch_size = \"many\"\n").unwrap_err();
    assert_eq!(e.key, "processor.batch_size", "{e}");
    let e = Config::from_toml("[processor\n").unwrap_err();
    assert_eq!(e.key, "line 1", "{e}");
}

#[test]
fn site_keys_are_checked_and_only_the_fileless_demo_site_is_open() {
    let good = crate::access::digest_hex("tlr_x");
    let site = |keys: &str| format!("[[sites]]\nid = \"shop\"\n{keys}");
    let key = |name: &str, scope: &str, sha: &str| {
        format!("[[sites.keys]]\nname = \"{name}\"\nscope = \"{scope}\"\nsha256 = \"{sha}\"\n")
    };
    let c = Config::from_toml(&site(&key("ops", "admin", &good))).unwrap();
    c.validate().unwrap();
    assert!(c.sites.iter().all(|s| !s.open), "a file's sites are closed");
    assert!(
        Config::default().sites[0].open,
        "the file-less demo site is open"
    );
    let e = Config::from_toml(&site(&key("ops", "root", &good))).unwrap_err();
    assert_eq!(e.key, "sites[0].keys[0].scope", "{e}");
    let e = Config::from_toml(&site(&key("ops", "admin", "abc")))
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "sites[0].keys[0].sha256", "{e}");
    assert!(e.reason.contains("64 hex digits"), "{e}");
    let twice = format!(
        "{}{}",
        key("ops", "admin", &good),
        key("ops", "serve", &crate::access::digest_hex("tlr_y"))
    );
    let e = Config::from_toml(&site(&twice))
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "sites[0].keys[1].name", "{e}");
    let shared = format!(
        "{}{}",
        key("ops", "admin", &good),
        key("shop", "serve", &good)
    );
    let e = Config::from_toml(&site(&shared))
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "sites[0].keys[1].sha256", "{e}");
    let e = Config::from_toml(&format!("{}open = true\n", site(""))).unwrap_err();
    assert_eq!(e.key, "sites[0].open", "{e}");
}

#[test]
fn configured_sites_keep_the_demo_site_unless_turned_off() {
    let c = Config::from_toml("[[sites]]\nid = \"shop\"\n").unwrap();
    let ids: Vec<&str> = c.sites.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["shop", "demo"]);
    c.validate().unwrap();
    let c = Config::from_toml("demo_site = false\n[[sites]]\nid = \"shop\"\n").unwrap();
    let ids: Vec<&str> = c.sites.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["shop"]);
    let c = Config::from_toml("[[sites]]\nid = \"demo\"\nname = \"mine\"\n").unwrap();
    assert_eq!(c.sites.len(), 1);
    assert_eq!(
        c.sites[0].name, "mine",
        "a listed demo site is the file's own"
    );
    // An empty file is the defaults, except that its demo site is closed (needs keys).
    let mut closed = Config::default();
    closed.sites[0].open = false;
    assert_eq!(Config::from_toml("").unwrap(), closed);
    // `tailor config` prints what a file re-reads as the same configuration.
    let printed = toml::to_string(&closed).unwrap();
    assert_eq!(Config::from_toml(&printed).unwrap(), closed);
    let e = Config::from_toml("demo_site = false\n").unwrap();
    assert_eq!(e.validate().unwrap_err().key, "sites");
}

#[test]
fn validation_names_the_key() {
    let mut c = Config::default();
    c.kafka.brokers = Some("localhost".into());
    assert_eq!(c.validate().unwrap_err().key, "kafka.brokers");
    let mut c = Config::default();
    c.redis.url = Some("http://x".into());
    assert_eq!(c.validate().unwrap_err().key, "redis.url");
    let mut c = Config::default();
    c.processor.batch_size = 0;
    assert_eq!(c.validate().unwrap_err().key, "processor.batch_size");
    let mut c = Config::default();
    c.sites.push(c.sites[0].clone());
    assert_eq!(c.validate().unwrap_err().key, "sites[1].id");
    let mut c = Config::default();
    let mut other = c.sites[0].clone();
    other.id = "other".into();
    c.sites.push(other);
    assert_eq!(
        c.validate().unwrap_err().key,
        "sites[0].snowplow_app_ids[0]"
    );
    let mut c = Config::default();
    c.sites[0].allowed_origins = vec!["https://shop.example/".into()];
    assert_eq!(c.validate().unwrap_err().key, "sites[0].allowed_origins[0]");
    let mut c = Config::default();
    c.collector.ip_mode = IpMode::Hash;
    assert_eq!(c.validate().unwrap_err().key, "collector.ip_salt");
    let mut c = Config::default();
    c.http.max_connections = 0;
    assert_eq!(c.validate().unwrap_err().key, "http.max_connections");
    let mut c = Config::default();
    c.http.header_read_timeout_ms = 0;
    assert_eq!(c.validate().unwrap_err().key, "http.header_read_timeout_ms");
    let mut c = Config::default();
    c.collector.dead_letter_max_bytes = 1024;
    assert_eq!(
        c.validate().unwrap_err().key,
        "collector.dead_letter_max_bytes"
    );
    let c = Config::from_toml("[http]\nidle_timeout_ms = 5000\n").unwrap();
    assert_eq!(c.http.idle_timeout_ms, 5000);
    assert_eq!(
        c.http.max_connections,
        HttpConfig::default().max_connections
    );
}

#[test]
fn campaigns_are_read_from_toml_and_checked_naming_the_key() {
    let c = Config::from_toml(
        "[[campaigns]]\nid = \"winback\"\naudience = 'lifecycle == \"lapsing\"'\nslots = [\"home\"]\n\
         trigger = { on = \"stage_changed\", to = \"lapsing\", within_days = 14 }\n\
         variants = [{ name = \"a\", title = \"We miss you\", coupon = \"BACK10\" }]\n",
    )
    .unwrap();
    assert_eq!(c.campaigns[0].variants[0].coupon.as_deref(), Some("BACK10"));
    assert_eq!(c.recommender.offers_per_slot, 1);
    let mut bad = c.clone();
    bad.campaigns[0].holdout = 2.0;
    assert_eq!(bad.validate().unwrap_err().key, "campaigns[0].holdout");
    let mut twice = c.clone();
    twice.campaigns.push(c.campaigns[0].clone());
    assert_eq!(twice.validate().unwrap_err().key, "campaigns[1].id");
    let mut weak = c.clone();
    weak.recommender.offer_secret = "short".into();
    assert_eq!(weak.validate().unwrap_err().key, "recommender.offer_secret");
    let e = Config::from_toml("[[campaigns]]\nid = \"x\"\nslots = [\"home\"]\nvariants = [{ name = \"a\", title = \"\" }]\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "campaigns[0].variants[0].title");
}

#[test]
fn rules_are_read_from_toml_and_checked_naming_the_key() {
    let c = Config::from_toml(
        "[[rules]]\nname = \"no-clearance\"\nkind = \"exclude\"\ncategories = [\"clearance\"]\n\
         [[rules]]\nname = \"tents-up\"\nkind = \"boost\"\nfactor = 1.5\nbrands = [\"Acme\"]\nslots = [\"home\"]\n\
         [[rules]]\nname = \"pin\"\nkind = \"pin\"\nsegment = 'lifecycle == \"lapsing\"'\npins = [{ item = \"coffee\", position = 1 }]\n",
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.rules.len(), 3);
    assert_eq!(c.rules[2].pins[0].item, "coffee");
    let mut bad = c.clone();
    bad.rules[1].factor = Some(0.5);
    let e = bad.validate().unwrap_err();
    assert_eq!(e.key, "rules[1].factor");
    assert!(e.reason.starts_with("a boost multiplies"), "{e}");
    let mut twice = c.clone();
    twice.rules[1].name = "no-clearance".into();
    assert_eq!(twice.validate().unwrap_err().key, "rules[1].name");
    let mut elsewhere = c.clone();
    elsewhere.rules[0].site = Some("nowhere".into());
    assert_eq!(elsewhere.validate().unwrap_err().key, "rules[0].site");
    let e = Config::from_toml("[[rules]]\nname = \"x\"\nkind = \"shove\"\n").unwrap_err();
    assert!(e.reason.contains("shove"), "{e}");
    let mut zero = Config::default();
    zero.catalog.refresh_ms = 0;
    assert_eq!(zero.validate().unwrap_err().key, "catalog.refresh_ms");
}

#[test]
fn sites_resolve_by_protocol_key_and_origin() {
    let c = Config::default();
    assert_eq!(c.site_for_app_id("demo").unwrap().id, "demo");
    assert_eq!(c.site_for_write_key("demo").unwrap().id, "demo");
    assert!(c.site_for_write_key("nope").is_none());
    assert!(c.sites[0].allows_origin("https://anything.example"));
    let mut s = c.sites[0].clone();
    s.allowed_origins = vec!["https://shop.example".into()];
    assert!(s.allows_origin("https://SHOP.example"));
    assert!(!s.allows_origin("https://evil.example"));
}
