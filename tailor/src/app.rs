//! Builds backends from the configuration and starts the requested stages on one listener.
//!
//! Backend choice: `kafka.brokers` set → Kafka, else the in-process bus; `redis.url` set → Redis, else
//! the in-process store. The in-process bus only connects stages inside one process, so standalone
//! `collector`/`processor` need Kafka, and those need Redis to share profiles with the recommender.

use anyhow::{bail, Context};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tailor_core::config::Config;
use tailor_core::keys::KeySpace;
use tailor_infra::bus::kafka::{
    ensure_topic, KafkaConsumer, KafkaProducer, KafkaSettings, KafkaTopicReader,
};
use tailor_infra::bus::memory::MemoryBus;
use tailor_infra::bus::spool::SpoolingProducer;
use tailor_infra::bus::{Consumer, Producer, TopicReader};
use tailor_infra::http::{ops_router, Check, Live};
use tailor_infra::store::memory::MemoryStore;
use tailor_infra::store::Store;
use tailor_infra::Shutdown;
use tokio::task::JoinHandle;

/// Capacity of each in-process bus partition (uncommitted records) before producers wait.
const MEMORY_BUS_CAPACITY: usize = 100_000;
/// Change events the in-process bus keeps (embedded mode), the oldest dropped first.
const MEMORY_CHANGES: usize = 100_000;
/// Partitions of the in-process bus.
const MEMORY_BUS_PARTITIONS: usize = 4;

/// Which stages a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub collector: bool,
    pub processor: bool,
    pub recommender: bool,
    /// The demo shop page at `/` (only with all three stages).
    pub demo: bool,
    /// The warehouse sink (Parquet files; needs Kafka and Redis).
    pub export: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        collector: true,
        processor: true,
        recommender: true,
        demo: true,
        export: false,
    };
    pub const COLLECTOR: Roles = Roles {
        collector: true,
        processor: false,
        recommender: false,
        demo: false,
        export: false,
    };
    pub const PROCESSOR: Roles = Roles {
        collector: false,
        processor: true,
        recommender: false,
        demo: false,
        export: false,
    };
    pub const EXPORT: Roles = Roles {
        collector: false,
        processor: false,
        recommender: false,
        demo: false,
        export: true,
    };
    pub const RECOMMENDER: Roles = Roles {
        collector: false,
        processor: false,
        recommender: true,
        demo: false,
        export: false,
    };
}

/// Started services.
pub struct Running {
    /// Where the HTTP listener is bound (useful with port 0).
    pub addr: SocketAddr,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
    producer: Option<Arc<dyn Producer>>,
}

impl Running {
    /// Waits for every task to end (after shutdown is signalled), then flushes the producer.
    pub async fn wait(self) -> anyhow::Result<()> {
        let mut first_err = None;
        for (name, t) in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(task = name, error = %e, "task failed");
                    first_err.get_or_insert(e.context(name));
                }
                Err(e) => {
                    first_err.get_or_insert(anyhow::anyhow!("{name} panicked: {e}"));
                }
            }
        }
        if let Some(p) = self.producer {
            if let Err(e) = p.flush(Duration::from_secs(10)).await {
                first_err.get_or_insert(
                    anyhow::Error::new(e).context("flushing the event bus producer"),
                );
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn kafka_settings(config: &Config, brokers: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: brokers.to_string(),
        topic: config.kafka.topic.clone(),
        delivery_timeout: Duration::from_millis(config.kafka.delivery_timeout_ms),
        fetch_wait: Duration::from_millis(config.kafka.fetch_wait_ms),
    }
}

fn check<F, E>(f: F) -> Check
where
    F: Fn() -> futures::future::BoxFuture<'static, Result<(), E>> + Send + Sync + 'static,
    E: std::fmt::Display + 'static,
{
    Arc::new(move || {
        let fut = f();
        Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
    })
}

/// The bus ends a process needs: producers (events, dead letters) and the dead-letter reader for the
/// collector, a consumer for the processor.
struct Bus {
    producer: Option<Arc<dyn Producer>>,
    dead_letters: Option<(Arc<dyn Producer>, Arc<dyn TopicReader>)>,
    consumer: Option<Box<dyn Consumer>>,
    /// The processor's change events (producer) and a reader for `/admin/changes`.
    changes: Option<(Arc<dyn Producer>, Arc<dyn TopicReader>)>,
    /// The actions stage's input (the change events, in its own group) and output (the actions
    /// topic).
    actions: Option<ActionsBus>,
}

/// The actions stage's ends: the change events in its own group, and the actions topic to write
/// and to read back (`tailor_processor::actions`).
type ActionsBus = (Box<dyn Consumer>, Arc<dyn Producer>, Arc<dyn TopicReader>);

async fn connect_bus(config: &Config, roles: Roles, shutdown: &Shutdown) -> anyhow::Result<Bus> {
    match &config.kafka.brokers {
        Some(brokers) => {
            let settings = kafka_settings(config, brokers);
            let dlq = KafkaSettings {
                topic: config.kafka.dead_letter_topic.clone(),
                ..settings.clone()
            };
            let changes_topic = KafkaSettings {
                topic: config.kafka.changes_topic.clone(),
                ..settings.clone()
            };
            let actions_topic = KafkaSettings {
                topic: config.kafka.actions_topic.clone(),
                ..settings.clone()
            };
            if roles.collector || roles.processor {
                let mut topics = vec![(&settings, config.kafka.partitions, vec![])];
                if roles.collector {
                    // Two lanes (small and big records), each retaining half the budget.
                    let lane = config.collector.dead_letter_max_bytes / 2;
                    let segment = (lane / 4).min(64 * 1024 * 1024);
                    topics.push((
                        &dlq,
                        2,
                        vec![
                            ("retention.bytes", lane.to_string()),
                            ("segment.bytes", segment.to_string()),
                        ],
                    ));
                }
                if roles.processor {
                    topics.push((&changes_topic, config.kafka.partitions, vec![]));
                    if config.processor.actions {
                        topics.push((&actions_topic, config.kafka.partitions, vec![]));
                    }
                }
                for (t, partitions, configs) in topics {
                    let replication = config.kafka.replication_factor;
                    if !roles.collector {
                        // A processor has nothing to do without its topics: it waits for them.
                        let patience = crate::connect::Patience::Service(shutdown.clone());
                        crate::connect::kafka_topic(t, partitions, replication, &configs, patience)
                            .await?;
                        continue;
                    }
                    if let Err(e) = ensure_topic(t, partitions, replication, &configs).await {
                        // A collector starts anyway: it spools to disk until the broker is back, and
                        // the topic is created by the broker's auto-create or the next start.
                        tracing::warn!(%brokers, topic = %t.topic, error = %e,
                            "Kafka is unreachable at start-up; accepting events into the spool until it is back");
                    }
                }
                tracing::info!(%brokers, topic = %settings.topic, "event bus: Kafka");
            }
            let (producer, dead_letters) = if roles.collector {
                // Both go through an on-disk spool, so a broker outage neither loses an acknowledged
                // event nor a dead letter.
                let dir = &config.collector.spool_dir;
                let max = config.collector.spool_max_bytes;
                // rdkafka fails a send after its delivery timeout; this bounds it should it not.
                let wait = settings.delivery_timeout + Duration::from_secs(1);
                let events: Arc<dyn Producer> = Arc::new(
                    SpoolingProducer::open(
                        Arc::new(KafkaProducer::new(&settings)?),
                        &dir.join("events"),
                        max,
                        wait,
                        shutdown.clone(),
                    )
                    .context("opening the spool (collector.spool_dir)")?
                    .stall_after(Duration::from_secs(config.collector.spool_stall_secs)),
                );
                let letters: Arc<dyn Producer> = Arc::new(
                    SpoolingProducer::open(
                        Arc::new(KafkaProducer::new(&dlq)?),
                        &dir.join("dead-letters"),
                        max,
                        wait,
                        shutdown.clone(),
                    )
                    .context("opening the spool (collector.spool_dir)")?,
                );
                let reader: Arc<dyn TopicReader> = Arc::new(KafkaTopicReader::new(&dlq));
                (Some(events), Some((letters, reader)))
            } else {
                (None, None)
            };
            let consumer: Option<Box<dyn Consumer>> = if roles.processor {
                Some(Box::new(KafkaConsumer::new(
                    &settings,
                    &config.kafka.group,
                )?))
            } else {
                None
            };
            let changes = if roles.processor {
                let p: Arc<dyn Producer> = Arc::new(KafkaProducer::new(&changes_topic)?);
                let r: Arc<dyn TopicReader> = Arc::new(KafkaTopicReader::new(&changes_topic));
                Some((p, r))
            } else {
                None
            };
            let actions = if roles.processor && config.processor.actions {
                let group = format!("{}.actions", config.kafka.group);
                let c: Box<dyn Consumer> = Box::new(KafkaConsumer::new(&changes_topic, &group)?);
                let p: Arc<dyn Producer> = Arc::new(KafkaProducer::new(&actions_topic)?);
                let r: Arc<dyn TopicReader> = Arc::new(KafkaTopicReader::new(&actions_topic));
                Some((c, p, r))
            } else {
                None
            };
            Ok(Bus {
                producer,
                dead_letters,
                consumer,
                changes,
                actions,
            })
        }
        None => {
            if roles.collector != roles.processor {
                bail!("the in-process bus only connects stages inside `tailor run`; give --kafka BROKERS");
            }
            if roles.collector {
                tracing::info!("event bus: in-process (embedded mode; not durable)");
                let bus = MemoryBus::new(
                    &config.kafka.topic,
                    MEMORY_BUS_PARTITIONS,
                    MEMORY_BUS_CAPACITY,
                    Duration::from_millis(config.kafka.delivery_timeout_ms),
                );
                let dlq = MemoryBus::retaining_bytes(
                    &config.kafka.dead_letter_topic,
                    2,
                    (config.collector.dead_letter_max_bytes / 2) as usize,
                );
                let changes = MemoryBus::retaining(&config.kafka.changes_topic, 1, MEMORY_CHANGES);
                let actions = MemoryBus::retaining(&config.kafka.actions_topic, 1, MEMORY_CHANGES);
                Ok(Bus {
                    producer: Some(Arc::new(bus.clone())),
                    dead_letters: Some((Arc::new(dlq.clone()), Arc::new(dlq))),
                    consumer: Some(Box::new(bus.consumer())),
                    actions: config.processor.actions.then(|| -> ActionsBus {
                        (
                            Box::new(changes.follower()),
                            Arc::new(actions.clone()),
                            Arc::new(actions),
                        )
                    }),
                    changes: Some((Arc::new(changes.clone()), Arc::new(changes))),
                })
            } else {
                Ok(Bus {
                    producer: None,
                    dead_letters: None,
                    consumer: None,
                    changes: None,
                    actions: None,
                })
            }
        }
    }
}

/// Every route `start` serves for `roles`, with who may call it: built from the same tables as the
/// routers (`tailor_infra::auth::Routes`), so the isolation test walks each route there is.
pub fn routes(config: &Config, roles: Roles) -> Vec<tailor_infra::auth::RouteSpec> {
    let mut all = Vec::new();
    if roles.collector {
        all.extend_from_slice(tailor_collector::routes(config).specs());
    }
    if roles.recommender {
        all.extend_from_slice(tailor_recommender::routes(config).specs());
    }
    if roles.demo {
        all.extend(crate::demo::routes());
    }
    if roles.processor {
        all.extend_from_slice(tailor_processor::admin::routes().specs());
        all.extend(crate::changes::routes());
    }
    all.extend(crate::openapi::routes());
    all.extend(tailor_infra::http::ops_routes());
    all.extend(tailor_infra::ops::routes());
    all
}

/// Validates the configuration, connects the backends, binds `listen` and starts the stages.
pub async fn start(
    config: Config,
    roles: Roles,
    listen: SocketAddr,
    shutdown: Shutdown,
) -> anyhow::Result<Running> {
    config.validate()?;
    for s in config.sites.iter().filter(|s| s.open) {
        tracing::warn!(site = %s.id,
            "site {:?} is OPEN: no configuration file was given, so every route of the built-in demo site answers without a key; give --config with [[sites.keys]] (`tailor keys create`) before exposing this server",
            s.id);
    }
    crate::metrics::register(roles, &config);
    let config = Arc::new(config);
    let keys = KeySpace::new(config.redis.namespace.clone());
    let mut checks: Vec<(&'static str, Check)> = Vec::new();
    let mut live: Vec<(&'static str, Live)> = Vec::new();

    if roles.export && (config.kafka.brokers.is_none() || config.redis.url.is_none()) {
        bail!("the warehouse export reads the Kafka topic and checks erasures in Redis: give --kafka and --redis");
    }
    let store: Option<Arc<dyn Store>> = if roles.processor || roles.recommender || roles.export {
        Some(tailor_infra::store::timed::timed(match &config.redis.url {
            Some(url) => {
                let s = crate::connect::redis(
                    url,
                    config.redis.cluster,
                    crate::connect::Patience::Service(shutdown.clone()),
                )
                .await?;
                tracing::info!(url = %crate::connect::redacted(url), cluster = config.redis.cluster, "profile store: Redis");
                Arc::new(s)
            }
            None => {
                if !(roles.processor && roles.recommender) {
                    bail!(
                        "the in-process store is only shared inside `tailor run`; give --redis URL"
                    );
                }
                tracing::info!("profile store: in-process (embedded mode; not durable)");
                Arc::new(MemoryStore::new())
            }
        }))
    } else {
        None
    };
    if let Some(s) = &store {
        let s = s.clone();
        checks.push((
            "store",
            check(move || {
                let s = s.clone();
                Box::pin(async move { s.check().await })
            }),
        ));
    }

    let Bus {
        producer,
        dead_letters,
        consumer,
        changes,
        actions,
    } = connect_bus(&config, roles, &shutdown).await?;
    if let Some(p) = &producer {
        let p = p.clone();
        checks.push((
            "bus",
            check(move || {
                let p = p.clone();
                Box::pin(async move { p.check().await })
            }),
        ));
    }

    // The processor's loop: stuck beyond its limit fails liveness; not consuming fails readiness.
    let health = consumer
        .as_ref()
        .map(|_| tailor_processor::Health::new(tailor_processor::health::STALL_LIMIT));
    if let Some(h) = &health {
        let r = h.clone();
        checks.push((
            "consuming",
            check(move || {
                let r = r.clone();
                Box::pin(async move { r.consuming() })
            }),
        ));
        let l = h.clone();
        live.push(("processor", Arc::new(move || l.live())));
    }

    let mut router = Router::new();
    // Where this process listens, for the demo shop's simulation button (known once bound).
    let demo_addr = Arc::new(std::sync::OnceLock::new());
    if let (Some(p), Some((letters, reader))) = (&producer, dead_letters) {
        router = router.merge(tailor_collector::router(tailor_collector::Collector::new(
            p.clone(),
            letters,
            reader,
            config.clone(),
        )));
    }
    let mut caches = None;
    if roles.recommender {
        let store = store.clone().expect("store exists for the recommender");
        let r = tailor_recommender::Recommender::new(store, keys.clone(), config.clone());
        caches = Some(r.clone());
        router = router.merge(tailor_recommender::router(r));
    }
    if roles.processor {
        router = router.merge(tailor_processor::admin::router(
            tailor_processor::admin::Admin {
                store: store.clone().expect("store exists for the processor"),
                keys: keys.clone(),
                config: config.clone(),
            },
        ));
    }
    if roles.demo {
        router = router.merge(crate::demo::router(crate::demo::Demo {
            addr: demo_addr.clone(),
            shutdown: shutdown.clone(),
        }));
    }
    if let Some((_, reader)) = &changes {
        router = router.merge(crate::changes::router(
            crate::changes::Changes {
                reader: reader.clone(),
                store: store.clone().expect("store exists for the processor"),
                keys: keys.clone(),
            },
            tailor_infra::auth::Gate::new(&config),
        ));
    }
    router = router
        .merge(crate::openapi::router(crate::openapi::document(
            roles,
            changes.is_some(),
            &routes(&config, roles),
        )))
        .merge(ops_router(checks, live))
        .merge(tailor_infra::ops::router())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(axum::middleware::from_fn(tailor_infra::http::admin_guard))
        .layer(axum::middleware::map_response(
            tailor_infra::http::json_error_bodies,
        ))
        .layer(tailor_infra::http::compress_pages());

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen} (--listen)"))?;
    let addr = listener.local_addr()?;
    let _ = demo_addr.set(addr);
    let mut tasks = Vec::new();
    let http_shutdown = shutdown.clone();
    let http = config.http.clone();
    tasks.push((
        "http",
        tokio::spawn(async move {
            tailor_infra::server::serve(listener, router, &http, async move {
                http_shutdown.cancelled().await
            })
            .await
            .context("HTTP server")
        }),
    ));
    if let Some(r) = caches {
        let s = shutdown.clone();
        tasks.push((
            "recommender caches",
            tokio::spawn(async move {
                tailor_recommender::refresh::run(r, s).await;
                Ok(())
            }),
        ));
    }
    if let Some(consumer) = consumer {
        let processor = tailor_processor::Processor {
            store: store.clone().expect("store exists for the processor"),
            keys: keys.clone(),
            config: config.processor.clone(),
            segments: config.segments.clone(),
            group: config.kafka.group.clone(),
            changes: changes.as_ref().map(|(p, _)| p.clone()),
            offer_secret: config.recommender.offer_secret.clone(),
        };
        let sites = config
            .sites
            .iter()
            .filter_map(|s| tailor_core::SiteId::parse(s.id.clone()).ok())
            .collect();
        let s = shutdown.clone();
        let refresher = processor.clone();
        tasks.push((
            "models",
            tokio::spawn(async move {
                tailor_processor::models::run_refresh(refresher, sites, s).await;
                Ok(())
            }),
        ));
        let s = shutdown.clone();
        tasks.push((
            "processor",
            tokio::spawn(tailor_processor::run(
                processor,
                consumer,
                s,
                health.clone().expect("health exists for the processor"),
            )),
        ));
    }
    if let Some((changes_in, actions_out, actions_log)) = actions {
        let stage = tailor_processor::actions::ActionStage {
            store: store.clone().expect("store exists for the processor"),
            keys: keys.clone(),
            campaigns: config.campaigns.clone(),
            config: config.processor.clone(),
            actions: actions_out,
            log: actions_log,
            http: reqwest::Client::new(),
        };
        let s = shutdown.clone();
        tasks.push((
            "actions",
            tokio::spawn(tailor_processor::actions::run(stage, changes_in, s)),
        ));
    }
    if roles.export {
        let brokers = config.kafka.brokers.as_deref().expect("checked above");
        let consumer = KafkaConsumer::new(&kafka_settings(&config, brokers), &config.export.group)?;
        let exporter = tailor_processor::export::Exporter {
            dir: config.export.dir.clone(),
            store: store.clone().expect("store exists for the export"),
            keys: keys.clone(),
            max_rows: config.export.max_rows,
            max_age: Duration::from_secs(config.export.max_age_secs),
        };
        let s = shutdown.clone();
        tasks.push((
            "export",
            tokio::spawn(tailor_processor::export::run(
                exporter,
                Box::new(consumer),
                s,
            )),
        ));
    }
    tracing::info!(%addr, ?roles, "listening");
    Ok(Running {
        addr,
        tasks,
        producer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(roles: Roles) -> Vec<&'static str> {
        routes(&Config::default(), roles)
            .iter()
            .map(|s| s.path)
            .collect()
    }

    /// The recommender serves the marketing stage (ranking, catalog, rules, campaigns); the admin
    /// API over the mined data (segments, analytics, the CLV fit, erasure) is the processor's.
    #[test]
    fn each_stage_serves_its_own_admin_routes() {
        let recommender = paths(Roles::RECOMMENDER);
        let processor = paths(Roles::PROCESSOR);
        for p in [
            "/admin/segments",
            "/admin/analytics",
            "/admin/erase",
            "/admin/clv/fit",
            "/insights",
        ] {
            assert!(processor.contains(&p), "{p} not in {processor:?}");
            assert!(!recommender.contains(&p), "{p} in {recommender:?}");
        }
        for p in ["/v1/recommendations", "/admin/rules", "/admin/campaigns"] {
            assert!(recommender.contains(&p), "{p} not in {recommender:?}");
            assert!(!processor.contains(&p), "{p} in {processor:?}");
        }
        let all = paths(Roles::ALL);
        for p in recommender.iter().chain(&processor) {
            assert!(all.contains(p), "{p} not served by `tailor run`");
        }
    }
}
