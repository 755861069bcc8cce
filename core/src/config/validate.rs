//! [`Config::validate`]: every value that types alone cannot check, each error naming its key.

use super::*;

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sites.is_empty() {
            return Err(ConfigError::new("sites", "at least one site is required"));
        }
        for (i, s) in self.sites.iter().enumerate() {
            SiteId::parse(s.id.clone())
                .map_err(|e| ConfigError::new(format!("sites[{i}].id"), e.to_string()))?;
            if self.sites[..i].iter().any(|o| o.id == s.id) {
                return Err(ConfigError::new(
                    format!("sites[{i}].id"),
                    format!("site {:?} is listed twice", s.id),
                ));
            }
        }
        if let Some(b) = &self.kafka.brokers {
            if b.trim().is_empty() || b.split(',').any(|h| !h.trim().contains(':')) {
                return Err(ConfigError::new(
                    "kafka.brokers",
                    format!("expected host:port[,host:port...], got {b:?}"),
                ));
            }
        }
        nonempty("kafka.topic", &self.kafka.topic)?;
        nonempty("kafka.group", &self.kafka.group)?;
        nonempty("kafka.dead_letter_topic", &self.kafka.dead_letter_topic)?;
        nonempty("kafka.changes_topic", &self.kafka.changes_topic)?;
        nonempty("kafka.actions_topic", &self.kafka.actions_topic)?;
        nonempty("export.group", &self.export.group)?;
        if self.export.group == self.kafka.group {
            return Err(ConfigError::new(
                "export.group",
                "must differ from kafka.group (the sink keeps its own offsets)",
            ));
        }
        if self.kafka.dead_letter_topic == self.kafka.topic {
            return Err(ConfigError::new(
                "kafka.dead_letter_topic",
                "must differ from kafka.topic",
            ));
        }
        if self.kafka.changes_topic == self.kafka.topic
            || self.kafka.changes_topic == self.kafka.dead_letter_topic
        {
            return Err(ConfigError::new(
                "kafka.changes_topic",
                "must differ from kafka.topic and kafka.dead_letter_topic",
            ));
        }
        if [
            &self.kafka.topic,
            &self.kafka.dead_letter_topic,
            &self.kafka.changes_topic,
        ]
        .contains(&&self.kafka.actions_topic)
        {
            return Err(ConfigError::new(
                "kafka.actions_topic",
                "must differ from kafka.topic, kafka.dead_letter_topic and kafka.changes_topic",
            ));
        }
        self.validate_mining()?;
        self.http.validate()?;
        // Each half must hold at least a few of the biggest records (a payload is cut at 256 KiB).
        if self.collector.dead_letter_max_bytes < 4 * 1024 * 1024 {
            return Err(ConfigError::new(
                "collector.dead_letter_max_bytes",
                "must be at least 4194304 (4 MiB)",
            ));
        }
        if self.collector.ip_mode == IpMode::Hash && self.collector.ip_salt.len() < 16 {
            return Err(ConfigError::new(
                "collector.ip_salt",
                "must be at least 16 characters when collector.ip_mode = \"hash\"",
            ));
        }
        self.validate_site_keys()?;
        self.validate_access_keys()?;
        self.validate_rules()?;
        self.validate_campaigns()?;
        if let Some(u) = &self.redis.url {
            if !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
            {
                return Err(ConfigError::new(
                    "redis.url",
                    format!("expected redis://host:port[/db], got {u:?}"),
                ));
            }
        }
        nonempty("redis.namespace", &self.redis.namespace)?;
        if self.redis.cluster && self.redis.url.is_none() {
            return Err(ConfigError::new(
                "redis.cluster",
                "needs redis.url (or --redis): the cluster's nodes, comma-separated",
            ));
        }
        if self.redis.namespace.contains(['{', '}']) {
            return Err(ConfigError::new(
                "redis.namespace",
                "must not contain '{' or '}'",
            ));
        }
        let counts = [
            ("catalog.refresh_ms", self.catalog.refresh_ms as i64),
            (
                "catalog.max_items_per_request",
                self.catalog.max_items_per_request as i64,
            ),
            (
                "collector.rate_limit_per_sec",
                self.collector.rate_limit_per_sec as i64,
            ),
            (
                "collector.rate_limit_burst",
                self.collector.rate_limit_burst as i64,
            ),
            (
                "collector.request_timeout_ms",
                self.collector.request_timeout_ms as i64,
            ),
            (
                "collector.spool_max_bytes",
                self.collector.spool_max_bytes as i64,
            ),
            (
                "collector.spool_stall_secs",
                self.collector.spool_stall_secs as i64,
            ),
            ("kafka.partitions", self.kafka.partitions as i64),
            (
                "kafka.replication_factor",
                self.kafka.replication_factor as i64,
            ),
            (
                "kafka.delivery_timeout_ms",
                self.kafka.delivery_timeout_ms as i64,
            ),
            (
                "collector.max_body_bytes",
                self.collector.max_body_bytes as i64,
            ),
            (
                "collector.max_batch_events",
                self.collector.max_batch_events as i64,
            ),
            ("processor.batch_size", self.processor.batch_size as i64),
            ("export.max_rows", self.export.max_rows as i64),
            ("export.max_age_secs", self.export.max_age_secs as i64),
            ("processor.top_items", self.processor.top_items as i64),
            (
                "processor.top_categories",
                self.processor.top_categories as i64,
            ),
            ("processor.top_brands", self.processor.top_brands as i64),
            ("processor.path_length", self.processor.path_length as i64),
            (
                "processor.sessions_kept",
                self.processor.sessions_kept as i64,
            ),
            (
                "processor.session_timeout_mins",
                self.processor.session_timeout_mins as i64,
            ),
            (
                "processor.models_refresh_secs",
                self.processor.models_refresh_secs as i64,
            ),
            ("processor.recent_items", self.processor.recent_items as i64),
            (
                "processor.session_items",
                self.processor.session_items as i64,
            ),
            (
                "processor.dedupe_ttl_secs",
                self.processor.dedupe_ttl_secs as i64,
            ),
            (
                "processor.neighbours_kept",
                self.processor.neighbours_kept as i64,
            ),
            (
                "processor.session_index_size",
                self.processor.session_index_size as i64,
            ),
            (
                "processor.shared_items_per_day",
                self.processor.shared_items_per_day as i64,
            ),
            (
                "processor.session_index_ttl_days",
                self.processor.session_index_ttl_days as i64,
            ),
            (
                "processor.sequence_steps",
                self.processor.sequence_steps as i64,
            ),
            (
                "processor.covisitation_window",
                self.processor.covisitation_window as i64,
            ),
            (
                "processor.trending_window_hours",
                self.processor.trending_window_hours as i64,
            ),
            (
                "processor.trending_baseline_days",
                self.processor.trending_baseline_days as i64,
            ),
            (
                "recommender.default_limit",
                self.recommender.default_limit as i64,
            ),
            ("recommender.seed_items", self.recommender.seed_items as i64),
            (
                "recommender.neighbours_per_seed",
                self.recommender.neighbours_per_seed as i64,
            ),
            (
                "recommender.popular_read",
                self.recommender.popular_read as i64,
            ),
            (
                "recommender.session_sample",
                self.recommender.session_sample as i64,
            ),
            (
                "recommender.session_neighbours",
                self.recommender.session_neighbours as i64,
            ),
            (
                "recommender.session_timeout_mins",
                self.recommender.session_timeout_mins as i64,
            ),
            ("recommender.timeout_ms", self.recommender.timeout_ms as i64),
            (
                "recommender.rerank_candidates",
                self.recommender.rerank_candidates as i64,
            ),
            (
                "recommender.rerank_popular_items",
                self.recommender.rerank_popular_items as i64,
            ),
        ];
        for (key, value) in counts {
            positive(key, value)?;
        }
        self.recommender.validate_weights()?;
        // A request waits for the broker's confirmation (at most the delivery timeout, then a second
        // for the spool) before it answers; a shorter request deadline would answer 408 to events
        // that are then delivered anyway.
        if self.kafka.brokers.is_some()
            && self.kafka.delivery_timeout_ms + 1000 >= self.collector.request_timeout_ms
        {
            return Err(ConfigError::new(
                "kafka.delivery_timeout_ms",
                format!(
                    "must be more than a second below collector.request_timeout_ms ({} ms)",
                    self.collector.request_timeout_ms
                ),
            ));
        }
        if !(1..=500).contains(&self.kafka.fetch_wait_ms) {
            return Err(ConfigError::new(
                "kafka.fetch_wait_ms",
                format!("must be 1 to 500 ms, got {}", self.kafka.fetch_wait_ms),
            ));
        }
        if (self.processor.neighbours_kept as usize) < self.recommender.neighbours_per_seed {
            return Err(ConfigError::new(
                "processor.neighbours_kept",
                format!(
                    "must be at least recommender.neighbours_per_seed ({}): the recommender reads that many",
                    self.recommender.neighbours_per_seed
                ),
            ));
        }
        if self.recommender.max_limit < self.recommender.default_limit {
            return Err(ConfigError::new(
                "recommender.max_limit",
                "must be at least recommender.default_limit",
            ));
        }
        Ok(())
    }

    /// Processor tuning that is not a plain count, and the segment definitions.
    fn validate_mining(&self) -> Result<(), ConfigError> {
        let p = &self.processor;
        for (key, v) in [
            (
                "processor.interest_half_life_days",
                p.interest_half_life_days,
            ),
            ("processor.recent_half_life_days", p.recent_half_life_days),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ConfigError::new(
                    key,
                    format!("must be a positive number of days, got {v}"),
                ));
            }
        }
        if p.recent_half_life_days >= p.interest_half_life_days {
            return Err(ConfigError::new(
                "processor.recent_half_life_days",
                "must be shorter than processor.interest_half_life_days",
            ));
        }
        let l = &p.lifecycle;
        if l.lapsing_days == 0 || l.lapsed_days <= l.lapsing_days {
            return Err(ConfigError::new(
                "processor.lifecycle.lapsed_days",
                format!(
                    "must be greater than processor.lifecycle.lapsing_days (> 0), got {} and {}",
                    l.lapsed_days, l.lapsing_days
                ),
            ));
        }
        if !(0.0 < l.lapsed_p_alive
            && l.lapsed_p_alive < l.lapsing_p_alive
            && l.lapsing_p_alive < 1.0)
        {
            return Err(ConfigError::new(
                "processor.lifecycle.lapsing_p_alive",
                "need 0 < lapsed_p_alive < lapsing_p_alive < 1",
            ));
        }
        if !(l.horizon_weeks.is_finite() && l.horizon_weeks > 0.0) {
            return Err(ConfigError::new(
                "processor.lifecycle.horizon_weeks",
                "must be a positive number of weeks",
            ));
        }
        for (i, d) in self.segments.iter().enumerate() {
            crate::segment::check(d).map_err(|e| ConfigError::new(format!("segments[{i}]"), e))?;
            if let Some(site) = &d.site {
                if self.site(site).is_none() {
                    return Err(ConfigError::new(
                        format!("segments[{i}].site"),
                        format!("no site {site:?} is configured"),
                    ));
                }
            }
            if self.segments[..i].iter().any(|o| {
                o.name == d.name && (o.site.is_none() || d.site.is_none() || o.site == d.site)
            }) {
                return Err(ConfigError::new(
                    format!("segments[{i}].name"),
                    format!("segment {:?} is defined twice", d.name),
                ));
            }
        }
        Ok(())
    }

    /// Each business rule checks, names a configured site, and has a name unique on its sites.
    fn validate_rules(&self) -> Result<(), ConfigError> {
        for (i, d) in self.rules.iter().enumerate() {
            crate::rules::check(d)
                .map_err(|e| ConfigError::new(format!("rules[{i}].{}", e.field), e.reason))?;
            if let Some(site) = &d.site {
                if self.site(site).is_none() {
                    return Err(ConfigError::new(
                        format!("rules[{i}].site"),
                        format!("no site {site:?} is configured"),
                    ));
                }
            }
            if self.rules[..i].iter().any(|o| {
                o.name == d.name && (o.site.is_none() || d.site.is_none() || o.site == d.site)
            }) {
                return Err(ConfigError::new(
                    format!("rules[{i}].name"),
                    format!("rule {:?} is defined twice", d.name),
                ));
            }
        }
        Ok(())
    }

    /// Each campaign checks, names a configured site, and has an id unique on its sites; offers
    /// are bounded and their tokens signed with a real key.
    fn validate_campaigns(&self) -> Result<(), ConfigError> {
        if self.recommender.offers_per_slot > 10 {
            return Err(ConfigError::new(
                "recommender.offers_per_slot",
                "must be from 0 to 10",
            ));
        }
        if self.recommender.offer_secret.len() < 16 {
            return Err(ConfigError::new(
                "recommender.offer_secret",
                "must be at least 16 characters",
            ));
        }
        for (i, d) in self.campaigns.iter().enumerate() {
            crate::campaign::check(d)
                .map_err(|e| ConfigError::new(format!("campaigns[{i}].{}", e.field), e.reason))?;
            if let Some(site) = &d.site {
                if self.site(site).is_none() {
                    return Err(ConfigError::new(
                        format!("campaigns[{i}].site"),
                        format!("no site {site:?} is configured"),
                    ));
                }
            }
            if self.campaigns[..i]
                .iter()
                .any(|o| o.id == d.id && (o.site.is_none() || d.site.is_none() || o.site == d.site))
            {
                return Err(ConfigError::new(
                    format!("campaigns[{i}].id"),
                    format!("campaign {:?} is defined twice", d.id),
                ));
            }
        }
        Ok(())
    }

    /// An app id or write key must name one site only, and origins must be `scheme://host[:port]`.
    fn validate_site_keys(&self) -> Result<(), ConfigError> {
        for (i, s) in self.sites.iter().enumerate() {
            let lists: [(&str, &Vec<String>); 2] = [
                ("snowplow_app_ids", &s.snowplow_app_ids),
                ("segment_write_keys", &s.segment_write_keys),
            ];
            for (name, list) in lists {
                for (j, v) in list.iter().enumerate() {
                    let key = format!("sites[{i}].{name}[{j}]");
                    nonempty(&key, v)?;
                    let owners = self.sites.iter().filter(|o| {
                        let l = if name == "snowplow_app_ids" {
                            &o.snowplow_app_ids
                        } else {
                            &o.segment_write_keys
                        };
                        l.contains(v)
                    });
                    if owners.count() > 1 || list[..j].contains(v) {
                        return Err(ConfigError::new(key, format!("{v:?} is given twice")));
                    }
                }
            }
            for (j, o) in s.allowed_origins.iter().enumerate() {
                let ok = o == "*"
                    || ((o.starts_with("http://") || o.starts_with("https://"))
                        && !o.ends_with('/')
                        && o.matches('/').count() == 2);
                if !ok {
                    return Err(ConfigError::new(
                        format!("sites[{i}].allowed_origins[{j}]"),
                        format!("expected \"*\" or scheme://host[:port] with no path, got {o:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Config {
    /// Each API key has a name unique within its site and a well-formed digest that no other key
    /// shares (a secret must name one key, so a request is never ambiguous).
    fn validate_access_keys(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<(String, usize, usize)> = Vec::new();
        for (i, s) in self.sites.iter().enumerate() {
            for (j, k) in s.keys.iter().enumerate() {
                let at = format!("sites[{i}].keys[{j}]");
                nonempty(&format!("{at}.name"), &k.name)?;
                if s.keys[..j].iter().any(|o| o.name == k.name) {
                    return Err(ConfigError::new(
                        format!("{at}.name"),
                        format!("key {:?} is named twice on site {:?}", k.name, s.id),
                    ));
                }
                let Some(d) = crate::access::parse_digest(&k.sha256) else {
                    return Err(ConfigError::new(
                        format!("{at}.sha256"),
                        format!(
                            "expected the hex SHA-256 of the secret (64 hex digits), got {:?}",
                            k.sha256
                        ),
                    ));
                };
                let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                if let Some((_, oi, oj)) = seen.iter().find(|(h, ..)| *h == hex) {
                    return Err(ConfigError::new(
                        format!("{at}.sha256"),
                        format!("the same secret as sites[{oi}].keys[{oj}]: give each key its own"),
                    ));
                }
                seen.push((hex, i, j));
            }
        }
        Ok(())
    }
}

fn positive(key: &str, v: i64) -> Result<(), ConfigError> {
    if v > 0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be greater than 0, got {v}"),
        ))
    }
}

fn nonempty(key: &str, v: &str) -> Result<(), ConfigError> {
    if v.trim().is_empty() {
        Err(ConfigError::new(key, "must not be empty"))
    } else {
        Ok(())
    }
}
