//! Outbound actions: when a change fires a campaign's trigger, the member is reached outside the site
//! (e-mail, SMS) through an action record on the actions topic (`kafka.actions_topic`) and, when the
//! campaign names a `webhook`, a POST to it.
//!
//! Invariants:
//! * An action's id is the change's id and the campaign (`<change id>|<campaign>`), and everything in
//!   it is a pure function of the change, the campaign and the member's document, the variant
//!   included (drawn with a random source seeded by the id). A change delivered again (the
//!   processor re-emits changes with the same ids after a crash) makes the same action, which the
//!   actions stage recognises by its id and does not send twice.
//! * Only members the campaign would reach get one: running schedule, audience and segment (the
//!   segment a `segment_entered` change names counts as entered, whatever the document says yet),
//!   not in the holdout.
//! * Triggers that open a window later (`after_days > 0`) and `purchase` triggers have no change of
//!   their own to fire on: they act on the site only.

use super::{pick_variant, Assignment, Campaign, Ineligible, Member, Rng, Stats, TriggerOn};
use crate::change::{Change, ChangeKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Traits copied into an action, so the receiving system can reach the member.
pub const CONTACT_TRAITS: [&str; 7] = [
    "email",
    "phone",
    "name",
    "first_name",
    "last_name",
    "language",
    "locale",
];

/// One outbound action (the record on the actions topic and the webhook's body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `<change id>|<campaign>`: stable, the webhook's `Idempotency-Key`.
    pub id: String,
    pub site_id: String,
    /// `m:<member>` or `a:<anonymous id>`.
    pub subject: String,
    pub campaign: String,
    pub variant: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    /// Why, as a person reads it ("you have not ordered for 4 months").
    pub reason: String,
    /// The change that fired the trigger.
    pub change_id: String,
    pub at: DateTime<Utc>,
    /// The member's contact traits ([`CONTACT_TRAITS`]) as last identified.
    pub contact: BTreeMap<String, serde_json::Value>,
    /// Where the actions stage POSTs it (the campaign's `webhook`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

impl Campaign {
    /// Whether `change` fires the campaign's trigger now (see the module docs).
    pub fn triggered_by(&self, change: &Change) -> bool {
        let Some(t) = &self.def.trigger else {
            return false;
        };
        if t.after_days > 0 {
            return false;
        }
        let matches = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        match (&t.on, &change.kind) {
            (TriggerOn::StageChanged, ChangeKind::StageChanged { to, .. }) => matches(&t.to, to),
            (TriggerOn::SegmentEntered, ChangeKind::SegmentEntered { segment }) => {
                matches(&t.segment, segment)
            }
            (TriggerOn::NewInterest, ChangeKind::NewInterest { category, .. }) => {
                matches(&t.category, category)
            }
            _ => false,
        }
    }

    /// The action `change` makes for the member `m` (whose document and facts are as read), or why
    /// it makes none. `m.now_ms` should be the change's time.
    pub fn action(&self, change: &Change, m: &Member<'_>) -> Result<Action, Ineligible> {
        if !self.triggered_by(change) {
            return Err(Ineligible::Trigger);
        }
        if !self.running(m.now_ms) {
            return Err(Ineligible::Schedule);
        }
        let entered = match &change.kind {
            ChangeKind::SegmentEntered { segment } => Some(segment.as_str()),
            _ => None,
        };
        self.in_audience(m, entered)?;
        let assignment = self.assign(m.subject);
        if assignment == Assignment::Holdout {
            return Err(Ineligible::Holdout);
        }
        let id = format!("{}|{}", change.id, self.def.id);
        let mut rng = Rng::seeded(super::fnv(&[&id]));
        let (i, _) = pick_variant(self, assignment, &Stats::default(), &mut rng);
        let v = &self.def.variants[i];
        let contact = m
            .state
            .map(|s| {
                s.traits
                    .iter()
                    .filter(|(k, _)| CONTACT_TRAITS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Action {
            id,
            site_id: change.site_id.clone(),
            subject: change.subject.clone(),
            campaign: self.def.id.clone(),
            variant: v.name.clone(),
            title: v.title.clone(),
            body: v.body.clone(),
            url: v.url.clone(),
            coupon: v.coupon.clone(),
            reason: self.reason(m.state, m.facts, m.now_ms),
            change_id: change.id.clone(),
            at: change.at,
            contact,
            webhook: self.def.webhook.clone(),
        })
    }
}
