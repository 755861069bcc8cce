//! Judgements at a point in time: lifetime value, life-cycle stage and segment membership, with a
//! change event for every transition; also the periodic sweep's re-judging outside any event.

use super::*;

impl Folder<'_> {
    /// Lifetime value (on purchases), life-cycle stage and segments at time `t`, with a change for
    /// every transition.
    pub(super) fn judge(
        &self,
        doc: &mut Doc,
        ctx: &SiteCtx,
        t: i64,
        fx: &mut Effects<'_>,
        purchase: bool,
    ) {
        let rules = &self.config.lifecycle;
        let site = doc.site.clone();
        let name = doc.subject.to_string();
        let s = &mut doc.state;
        let facts = Facts::of(s, &ctx.models, rules, t);
        if purchase && facts.value.is_some() {
            s.clv = facts.value;
        }
        let stage = facts.lifecycle;
        let from = s.stage.as_ref().map(|r| r.stage.clone());
        if from.as_deref() != Some(stage) {
            if let Some(old) = &from {
                fx.ops.push(WriteOp::SetRemove {
                    key: self.keys.stage(&site, old),
                    member: name.clone(),
                });
            }
            fx.ops.push(WriteOp::SetAdd {
                key: self.keys.stage(&site, stage),
                member: name.clone(),
            });
            s.stage = Some(StageRecord {
                stage: stage.to_string(),
                since_ms: t,
            });
            fx.change(
                Some(stage),
                ChangeKind::StageChanged {
                    from,
                    to: stage.to_string(),
                },
            );
        }
        let subject = RuleSubject {
            facts: &facts,
            state: s,
            now_ms: t,
            half_life_ms: self.half_life_ms(),
        };
        let now_in: Vec<&String> = ctx
            .segments
            .iter()
            .filter(|(_, rule)| rule.matches(&subject))
            .map(|(n, _)| n)
            .collect();
        let entered: Vec<String> = now_in
            .iter()
            .filter(|n| !s.segments.contains(**n))
            .map(|n| (*n).clone())
            .collect();
        let exited: Vec<String> = s
            .segments
            .iter()
            .filter(|n| !now_in.contains(n))
            .cloned()
            .collect();
        for seg in entered {
            fx.ops.push(WriteOp::SetAdd {
                key: self.keys.segment(&site, &seg),
                member: name.clone(),
            });
            s.segments.insert(seg.clone());
            // When it entered: a campaign's `segment_entered` trigger window starts here.
            s.signals
                .insert(tailor_core::campaign::segment_entered_signal(&seg), t);
            fx.change(
                Some(&seg),
                ChangeKind::SegmentEntered {
                    segment: seg.clone(),
                },
            );
        }
        for seg in exited {
            fx.ops.push(WriteOp::SetRemove {
                key: self.keys.segment(&site, &seg),
                member: name.clone(),
            });
            s.segments.remove(&seg);
            fx.change(
                Some(&seg),
                ChangeKind::SegmentExited {
                    segment: seg.clone(),
                },
            );
        }
    }
}

/// Re-judges a document at `now_ms` outside any event: the periodic sweep that moves idle customers
/// to lapsing and lapsed and refreshes time-dependent segments. Returns the site ops and the changes,
/// whose ids start with `id_prefix` (one per sweep day and subject, so a repeated sweep repeats ids).
pub fn rejudge(
    folder: &Folder<'_>,
    doc: &mut Doc,
    ctx: &SiteCtx,
    now_ms: i64,
    id_prefix: String,
) -> (Vec<WriteOp>, Vec<Change>) {
    let site = doc.site.clone();
    let mut fx = Effects {
        keys: folder.keys,
        site: &site,
        subject: doc.subject.to_string(),
        id_prefix,
        at: DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
        ops: Vec::new(),
        changes: Vec::new(),
    };
    folder.judge(doc, ctx, now_ms, &mut fx, true);
    (fx.ops, fx.changes)
}
