//! One behavioural suite run against every store backend, so the embedded store cannot drift from Redis.

use super::{memory::MemoryStore, redis::RedisStore, Read, Store, Value};
use crate::testkit;
use tailor_core::ops::{Applied, Position, Update, WriteOp};

fn update(ns: &str, event: &str, offset: Option<i64>, ops: Vec<WriteOp>) -> Update {
    Update {
        marker_key: format!("{ns}:ev:{event}"),
        marker_ttl_secs: 60,
        position: offset.map(|offset| Position {
            key: format!("{ns}:offsets"),
            field: "t/0".into(),
            offset,
        }),
        ops,
    }
}

async fn suite(store: &dyn Store, ns: &str) {
    let h = format!("{ns}:h");
    let l = format!("{ns}:l");
    let z = format!("{ns}:z");
    let ops = |v: &str, t: i64| {
        vec![
            WriteOp::HashIncr {
                key: h.clone(),
                field: "n".into(),
                by: 2,
            },
            WriteOp::HashIncrFloat {
                key: h.clone(),
                field: "rev".into(),
                by: 1.25,
            },
            WriteOp::HashSet {
                key: h.clone(),
                field: "who".into(),
                value: v.into(),
            },
            WriteOp::HashMin {
                key: h.clone(),
                field: "first".into(),
                value: t,
            },
            WriteOp::HashMax {
                key: h.clone(),
                field: "last".into(),
                value: t,
            },
            WriteOp::ListPushDistinct {
                key: l.clone(),
                value: v.into(),
                cap: 2,
            },
            WriteOp::ZIncr {
                key: z.clone(),
                member: v.into(),
                by: 1.5,
            },
            WriteOp::Expire {
                key: l.clone(),
                seconds: 600,
            },
        ]
    };
    let out = store
        .apply(&[
            update(ns, "e1", Some(10), ops("a", 50)),
            update(ns, "e2", Some(11), ops("b", 20)),
            update(ns, "e3", None, ops("a", 90)),
            update(ns, "e4", Some(12), ops("c", 70)),
        ])
        .await
        .unwrap();
    assert_eq!(out, vec![Applied::Applied; 4]);

    // Redelivery of offset 11 and a retry of event e3 under a new offset change nothing.
    let again = store
        .apply(&[
            update(ns, "e2", Some(11), ops("b", 20)),
            update(ns, "e3", Some(13), ops("a", 90)),
            update(ns, "e5", Some(12), ops("zzz", 1)),
        ])
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![
            Applied::BehindWatermark,
            Applied::DuplicateEvent,
            Applied::BehindWatermark
        ]
    );

    let got = store
        .read(&[
            Read::Hash(h.clone()),
            Read::List(l.clone(), 10),
            Read::Top(z.clone(), 2),
            Read::Hash(format!("{ns}:absent")),
            Read::Top(format!("{ns}:absent"), 3),
        ])
        .await
        .unwrap();
    let mut it = got.into_iter();
    let hash = it.next().unwrap().into_hash();
    assert_eq!(hash["n"], "8");
    assert_eq!(hash["rev"].parse::<f64>().unwrap(), 5.0);
    assert_eq!(hash["who"], "c");
    assert_eq!(hash["first"], "20");
    assert_eq!(hash["last"], "90");
    assert_eq!(
        it.next().unwrap(),
        Value::List(vec!["c".into(), "a".into()])
    );
    assert_eq!(
        it.next().unwrap(),
        Value::Top(vec![("a".into(), 3.0), ("c".into(), 1.5)])
    );
    assert_eq!(it.next().unwrap(), Value::Hash(Default::default()));
    assert_eq!(it.next().unwrap(), Value::Top(vec![]));
    store.check().await.unwrap();
}

#[tokio::test]
async fn memory_store_conforms() {
    suite(&MemoryStore::new(), "mem").await;
}

#[tokio::test]
async fn redis_store_conforms() {
    let store = RedisStore::connect(&testkit::redis_url()).await.unwrap();
    suite(&store, &testkit::unique("conf")).await;
}

#[tokio::test]
async fn redis_store_recovers_from_a_flushed_script_cache() {
    let url = testkit::redis_url();
    let store = RedisStore::connect(&url).await.unwrap();
    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut c)
        .await
        .unwrap();
    let ns = testkit::unique("flush");
    let out = store
        .apply(&[update(
            &ns,
            "e1",
            None,
            vec![WriteOp::HashIncr {
                key: format!("{ns}:h"),
                field: "n".into(),
                by: 1,
            }],
        )])
        .await
        .unwrap();
    assert_eq!(out, vec![Applied::Applied]);
}
