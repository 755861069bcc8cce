//! Identity stitching: an anonymous device (or an alias' previous id) merged into its member,
//! exactly once, with the merged identity leaving the site's indexes and sets.

use super::*;

impl Folder<'_> {
    /// Merges `from`'s history into member `m` once, and points `from` at `m`.
    pub(super) fn stitch(
        &self,
        loaded: &mut Loaded,
        site: &SiteId,
        from: &Subject,
        m: &MemberId,
        fx: &mut Effects<'_>,
    ) {
        let to = Subject::Member(m.clone());
        let from_name = from.to_string();
        let source = self.doc(loaded, site, from).state.clone();
        if !self
            .doc(loaded, site, &to)
            .state
            .merged
            .contains(&from_name)
        {
            let caps = self.caps();
            let target = self.doc(loaded, site, &to);
            target.state.merged.insert(from_name.clone());
            target.dirty = true;
            if !source.is_empty() && source.stitched_to.as_deref() != Some(m.as_str()) {
                target.state.absorb(&source, &caps);
                for (day, spend) in &source.purchases.days {
                    target.extra.push(WriteOp::ZIncr {
                        key: self.keys.purchase_days(site, &to),
                        member: day.to_string(),
                        by: *spend,
                    });
                }
                fx.change(
                    Some(&from_name),
                    ChangeKind::IdentityMerged {
                        from: from_name.clone(),
                    },
                );
                // The anonymous identity leaves the site's indexes and sets; the member's entries are
                // refreshed when the event is applied.
                for key in [
                    self.keys.customers(site),
                    self.keys.recency_index(site),
                    self.keys.frequency_index(site),
                ] {
                    fx.ops.push(WriteOp::ZRemove {
                        key,
                        member: from_name.clone(),
                    });
                }
                for seg in &source.segments {
                    fx.ops.push(WriteOp::SetRemove {
                        key: self.keys.segment(site, seg),
                        member: from_name.clone(),
                    });
                }
                if let Some(st) = &source.stage {
                    fx.ops.push(WriteOp::SetRemove {
                        key: self.keys.stage(site, &st.stage),
                        member: from_name.clone(),
                    });
                }
            }
        }
        let src = self.doc(loaded, site, from);
        if src.state.stitched_to.as_deref() != Some(m.as_str()) {
            src.state.stitched_to = Some(m.to_string());
            src.state.segments.clear();
            src.state.stage = None;
            src.dirty = true;
        }
    }
}
