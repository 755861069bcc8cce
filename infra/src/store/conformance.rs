//! One behavioural suite run against every store backend, so the embedded store cannot drift from Redis.

use super::{memory::MemoryStore, redis::RedisStore, Read, Store, Value};
use crate::testkit;
use tailor_core::ops::{merge, sum, Applied, Guard, Marker, Position, Update, WriteOp};

fn update(ns: &str, event: &str, offset: Option<i64>, ops: Vec<WriteOp>) -> Update {
    Update {
        guard: None,
        marker: Some(Marker {
            key: format!("{ns}:ev:{event}"),
            ttl_secs: 60,
        }),
        position: offset.map(|offset| Position {
            key: format!("{ns}:offsets"),
            field: "t/0".into(),
            offset,
            parts: Vec::new(),
            since: None,
        }),
        ops,
    }
}

/// Guarded document writes, strings, sets and sorted-set ranges.
async fn documents_and_sets(store: &dyn Store, ns: &str) {
    let doc = format!("{ns}:doc");
    let write = |expected: Option<&str>, rev: &str, body: &str| Update {
        guard: Some(Guard {
            key: doc.clone(),
            field: "rev".into(),
            expected: expected.map(String::from),
        }),
        ops: vec![
            WriteOp::HashSet {
                key: doc.clone(),
                field: "rev".into(),
                value: rev.into(),
            },
            WriteOp::HashSet {
                key: doc.clone(),
                field: "body".into(),
                value: body.into(),
            },
        ],
        ..Default::default()
    };
    let out = store
        .apply(&[
            write(None, "1", "first"),
            write(None, "1", "racing create"),
            write(Some("1"), "2", "second"),
            write(Some("1"), "2", "stale"),
        ])
        .await
        .unwrap();
    assert_eq!(
        out,
        [
            Applied::Applied,
            Applied::Conflict,
            Applied::Applied,
            Applied::Conflict
        ]
    );
    let (s, z, t) = (format!("{ns}:s"), format!("{ns}:z"), format!("{ns}:t"));
    let ops = vec![
        WriteOp::SetAdd {
            key: s.clone(),
            member: "a".into(),
        },
        WriteOp::SetAdd {
            key: s.clone(),
            member: "b".into(),
        },
        WriteOp::SetRemove {
            key: s.clone(),
            member: "a".into(),
        },
        WriteOp::ZSet {
            key: z.clone(),
            member: "x".into(),
            score: 3.0,
        },
        WriteOp::ZSet {
            key: z.clone(),
            member: "y".into(),
            score: 1.0,
        },
        WriteOp::ZSet {
            key: z.clone(),
            member: "w".into(),
            score: 2.0,
        },
        WriteOp::ZSet {
            key: z.clone(),
            member: "x".into(),
            score: 5.0,
        },
        WriteOp::ZRemove {
            key: z.clone(),
            member: "w".into(),
        },
        WriteOp::Put {
            key: t.clone(),
            value: "hello".into(),
            ttl_secs: Some(600),
        },
        WriteOp::Put {
            key: format!("{ns}:gone"),
            value: "x".into(),
            ttl_secs: None,
        },
        WriteOp::Delete {
            key: format!("{ns}:gone"),
        },
        WriteOp::HashSet {
            key: format!("{ns}:h2"),
            field: "a".into(),
            value: "1".into(),
        },
        WriteOp::HashSet {
            key: format!("{ns}:h2"),
            field: "b".into(),
            value: "2".into(),
        },
        WriteOp::HashDelete {
            key: format!("{ns}:h2"),
            field: "a".into(),
        },
        // Keeps the 2 highest of (a 1, b 1, c 3, d 2): ties go by member, so `b` outranks `a`.
        WriteOp::ZSet {
            key: format!("{ns}:k"),
            member: "a".into(),
            score: 1.0,
        },
        WriteOp::ZSet {
            key: format!("{ns}:k"),
            member: "b".into(),
            score: 1.0,
        },
        WriteOp::ZSet {
            key: format!("{ns}:k"),
            member: "c".into(),
            score: 3.0,
        },
        WriteOp::ZSet {
            key: format!("{ns}:k"),
            member: "d".into(),
            score: 2.0,
        },
        WriteOp::ZKeepTop {
            key: format!("{ns}:k"),
            keep: 3,
        },
        WriteOp::ZKeepTop {
            key: format!("{ns}:k"),
            keep: 9,
        },
        WriteOp::ZSet {
            key: format!("{ns}:k0"),
            member: "a".into(),
            score: 1.0,
        },
        WriteOp::ZKeepTop {
            key: format!("{ns}:k0"),
            keep: 0,
        },
    ];
    let no_marker = Update {
        ops,
        ..Default::default()
    };
    assert_eq!(store.apply(&[no_marker]).await.unwrap(), [Applied::Applied]);
    let got = store
        .read(&[
            Read::Hash(doc.clone()),
            Read::Members(s.clone()),
            Read::SCard(s.clone()),
            Read::ZCard(z.clone()),
            Read::Range(z.clone(), 0, -1),
            Read::Range(z.clone(), -1, -1),
            Read::Get(t.clone()),
            Read::Get(format!("{ns}:gone")),
            Read::Field(doc.clone(), "rev".into()),
            Read::Field(doc.clone(), "absent".into()),
            Read::Hash(format!("{ns}:h2")),
            Read::SCard(format!("{ns}:absent")),
            Read::Range(format!("{ns}:k"), 0, -1),
            Read::ZCard(format!("{ns}:k0")),
            Read::IsMember(s.clone(), "b".into()),
            Read::IsMember(s.clone(), "zz".into()),
            Read::IsMember(format!("{ns}:absent"), "b".into()),
        ])
        .await
        .unwrap();
    let mut it = got.into_iter();
    assert_eq!(it.next().unwrap().into_hash()["body"], "second");
    assert_eq!(it.next().unwrap(), Value::List(vec!["b".into()]));
    assert_eq!(it.next().unwrap(), Value::Count(1));
    assert_eq!(it.next().unwrap(), Value::Count(2));
    assert_eq!(
        it.next().unwrap(),
        Value::Top(vec![("y".into(), 1.0), ("x".into(), 5.0)])
    );
    assert_eq!(it.next().unwrap(), Value::Top(vec![("x".into(), 5.0)]));
    assert_eq!(it.next().unwrap(), Value::Text(Some("hello".into())));
    assert_eq!(it.next().unwrap(), Value::Text(None));
    assert_eq!(it.next().unwrap(), Value::Text(Some("2".into())));
    assert_eq!(it.next().unwrap(), Value::Text(None));
    assert_eq!(
        it.next().unwrap(),
        Value::Hash([("b".to_string(), "2".to_string())].into())
    );
    assert_eq!(it.next().unwrap(), Value::Count(0));
    assert_eq!(
        it.next().unwrap(),
        Value::Top(vec![
            ("b".into(), 1.0),
            ("d".into(), 2.0),
            ("c".into(), 3.0)
        ])
    );
    assert_eq!(
        it.next().unwrap(),
        Value::Count(0),
        "keep 0 empties the set"
    );
    assert_eq!(it.next().unwrap(), Value::Count(1));
    assert_eq!(it.next().unwrap(), Value::Count(0));
    assert_eq!(it.next().unwrap(), Value::Count(0));
    let mut found = store.scan(&format!("{ns}:")).await.unwrap();
    found.sort();
    assert_eq!(
        found,
        [
            doc.clone(),
            format!("{ns}:h2"),
            format!("{ns}:k"),
            s.clone(),
            t.clone(),
            z.clone()
        ]
    );
    assert!(
        store.scan(&format!("{ns}:t*")).await.unwrap().is_empty(),
        "glob characters are literal"
    );
}

/// An update of one message at `offset` of partition `t/3`, under the watermark hash `key`.
fn at_offset(key: String, offset: i64, ops: Vec<WriteOp>) -> Update {
    Update {
        position: Some(Position {
            key,
            field: "t/3".into(),
            offset,
            parts: Vec::new(),
            since: None,
        }),
        ops,
        ..Default::default()
    }
}

/// A merged update ([`merge`]) applies exactly its runs above the watermark, however it is cut.
async fn merged_runs(store: &dyn Store, ns: &str) {
    let (h, z) = (format!("{ns}:mh"), format!("{ns}:mz"));
    let at = |offset: i64, by: i64| {
        at_offset(
            format!("{ns}:moffsets"),
            offset,
            vec![
                WriteOp::HashIncr {
                    key: h.clone(),
                    field: "n".into(),
                    by,
                },
                WriteOp::HashMin {
                    key: h.clone(),
                    field: format!("first{offset}"),
                    value: offset,
                },
                WriteOp::ZIncr {
                    key: z.clone(),
                    member: format!("m{offset}"),
                    by: by as f64,
                },
                WriteOp::ZKeepTop {
                    key: z.clone(),
                    keep: 2,
                },
                WriteOp::Expire {
                    key: h.clone(),
                    seconds: 600,
                },
            ],
        )
    };
    assert_eq!(store.apply(&[at(21, 1)]).await.unwrap(), [Applied::Applied]);
    let batch = merge(
        vec![at(20, 10), at(21, 100), at(22, 1000), at(23, 10_000)],
        8,
    );
    assert_eq!(batch.len(), 1, "one partition, one update");
    assert_eq!(store.apply(&batch).await.unwrap(), [Applied::Applied]);
    assert_eq!(
        store.apply(&batch).await.unwrap(),
        [Applied::BehindWatermark]
    );
    // Redelivered, cut differently: only offset 24 is new.
    let again = merge(vec![at(22, 1000), at(23, 10_000), at(24, 100_000)], 8);
    assert_eq!(store.apply(&again).await.unwrap(), [Applied::Applied]);
    let got = store
        .read(&[Read::Hash(h.clone()), Read::Top(z.clone(), 5)])
        .await
        .unwrap();
    let mut it = got.into_iter();
    let hash = it.next().unwrap().into_hash();
    assert_eq!(hash["n"], "111001", "offsets 21, 22, 23 and 24 once each");
    let mut firsts: Vec<&str> = hash
        .keys()
        .filter(|k| k.starts_with("first"))
        .map(String::as_str)
        .collect();
    firsts.sort();
    assert_eq!(firsts, ["first21", "first22", "first23", "first24"]);
    assert_eq!(
        it.next().unwrap(),
        Value::Top(vec![("m24".into(), 100_000.0), ("m23".into(), 10_000.0)]),
        "the sorted set is trimmed to its top 2 once, at the end"
    );
}

/// A summed update ([`sum`]) applies whole, is skipped whole, or is refused with nothing applied
/// when part of it was applied before; the runs it came from then apply exactly what is new.
async fn summed_runs(store: &dyn Store, ns: &str) {
    let (h, z) = (format!("{ns}:sh"), format!("{ns}:sz"));
    let at = |offset: i64, by: i64| {
        at_offset(
            format!("{ns}:soffsets"),
            offset,
            vec![
                WriteOp::HashIncr {
                    key: h.clone(),
                    field: "n".into(),
                    by,
                },
                WriteOp::ZIncr {
                    key: z.clone(),
                    member: "m".into(),
                    by: by as f64,
                },
            ],
        )
    };
    let read = || async {
        let got = store
            .read(&[Read::Field(h.clone(), "n".into()), Read::Top(z.clone(), 5)])
            .await
            .unwrap();
        (got[0].clone(), got[1].clone())
    };
    let counted = |n: i64| {
        (
            Value::Text(Some(n.to_string())),
            Value::Top(vec![("m".into(), n as f64)]),
        )
    };
    assert_eq!(store.apply(&[at(21, 1)]).await.unwrap(), [Applied::Applied]);
    let runs = merge(vec![at(22, 10), at(23, 100)], 8);
    let summed = sum(&runs[0]).expect("one op a key");
    assert_eq!(summed.ops.len(), 2);
    assert_eq!(
        store.apply(std::slice::from_ref(&summed)).await.unwrap(),
        [Applied::Applied]
    );
    assert_eq!(read().await, counted(111));
    assert_eq!(
        store.apply(&[summed]).await.unwrap(),
        [Applied::BehindWatermark]
    );
    // Redelivered, cut differently: 23 was applied, 24 and 25 are new. The sum is refused whole.
    let runs = merge(vec![at(23, 100), at(24, 1000), at(25, 10_000)], 8);
    let summed = sum(&runs[0]).expect("one op a key");
    assert_eq!(store.apply(&[summed]).await.unwrap(), [Applied::Conflict]);
    assert_eq!(
        read().await,
        counted(111),
        "nothing of a refused sum applied"
    );
    assert_eq!(store.apply(&runs).await.unwrap(), [Applied::Applied]);
    assert_eq!(read().await, counted(11_111), "21 to 25 once each");
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
    merged_runs(&MemoryStore::new(), "mem").await;
    summed_runs(&MemoryStore::new(), "mem").await;
    documents_and_sets(&MemoryStore::new(), "mem").await;
}

#[tokio::test]
async fn redis_store_conforms() {
    let store = RedisStore::connect(&testkit::redis_url()).await.unwrap();
    suite(&store, &testkit::unique("conf")).await;
    merged_runs(&store, &format!("{{{}}}", testkit::unique("conf"))).await;
    summed_runs(&store, &format!("{{{}}}", testkit::unique("conf"))).await;
    documents_and_sets(&store, &format!("{{{}}}", testkit::unique("conf"))).await;
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

#[tokio::test]
async fn redis_cluster_store_conforms() {
    let store = RedisStore::connect_cluster(&testkit::redis_cluster_urls())
        .await
        .unwrap();
    // The suites' updates each keep their keys in one slot, as Tailor's do: a hash tag.
    suite(&store, &format!("{{{}}}", testkit::unique("conf"))).await;
    merged_runs(&store, &format!("{{{}}}", testkit::unique("conf"))).await;
    summed_runs(&store, &format!("{{{}}}", testkit::unique("conf"))).await;
    documents_and_sets(&store, &format!("{{{}}}", testkit::unique("conf"))).await;
}

/// What only a cluster can get wrong: a batch and a read spanning many hash slots (so every node),
/// answered in order, and a scan that finds keys on every node.
#[tokio::test]
async fn redis_cluster_batches_span_slots_and_scans_see_every_node() {
    let store = RedisStore::connect_cluster(&testkit::redis_cluster_urls())
        .await
        .unwrap();
    let ns = testkit::unique("slots");
    let tags: Vec<String> = (0..60).map(|i| format!("{{{ns}:{i}}}")).collect();
    let slots: std::collections::HashSet<u16> =
        tags.iter().map(|t| super::redis::hash_slot(t)).collect();
    assert!(slots.len() > 50, "the tags spread over many slots");
    let updates: Vec<Update> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| Update {
            guard: None,
            marker: Some(Marker {
                key: format!("{t}:ev"),
                ttl_secs: 60,
            }),
            position: None,
            ops: vec![WriteOp::HashIncr {
                key: format!("{t}:h"),
                field: "n".into(),
                by: i as i64,
            }],
        })
        .collect();
    assert_eq!(
        store.apply(&updates).await.unwrap(),
        vec![Applied::Applied; tags.len()]
    );
    assert_eq!(
        store.apply(&updates).await.unwrap(),
        vec![Applied::DuplicateEvent; tags.len()],
        "markers are found on whichever node holds them"
    );
    let reads: Vec<Read> = tags
        .iter()
        .map(|t| Read::Field(format!("{t}:h"), "n".into()))
        .collect();
    let got = store.read(&reads).await.unwrap();
    for (i, v) in got.into_iter().enumerate() {
        assert_eq!(
            v,
            Value::Text(Some(i.to_string())),
            "read {i} answered in order"
        );
    }
    let mut found = store.scan(&format!("{{{ns}:")).await.unwrap();
    found.retain(|k| k.ends_with(":h"));
    assert_eq!(found.len(), tags.len(), "{found:?}");
    store.check().await.unwrap();
}
