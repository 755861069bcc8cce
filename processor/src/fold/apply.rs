//! Applying one event to its target document: counters, interests, recency lists and the path,
//! then the event type's own effects (pages, funnel, purchases, traits, dwell, offers), then the
//! judgements at the event's time.

use super::*;

impl Folder<'_> {
    /// The campaign offer a token names, if it verifies and is for this site; a forged or foreign
    /// token is counted (`tailor_processor_offer_tokens_rejected_total`) and otherwise ignored.
    fn offer(&self, site: &SiteId, token: Option<&str>) -> Option<campaign::OfferToken> {
        let offer = campaign::verify(self.offer_secret, token?).filter(|o| o.site == site.as_str());
        if offer.is_none() {
            metrics::counter!("tailor_processor_offer_tokens_rejected_total").increment(1);
        }
        offer
    }

    /// Adds one to a campaign variant's counter, in the site's update (exactly once per event).
    fn count_offer(
        &self,
        fx: &mut Effects<'_>,
        site: &SiteId,
        offer: &campaign::OfferToken,
        counter: &str,
    ) {
        fx.hincr(
            &self.keys.campaign_stats(site),
            campaign::Stats::field(&offer.campaign, &offer.variant, counter),
            1,
        );
    }

    /// Applies one event to its target document.
    pub(super) fn apply(
        &self,
        doc: &mut Doc,
        e: &Event,
        caps: &Caps,
        ctx: &SiteCtx,
        fx: &mut Effects<'_>,
    ) {
        let k = self.keys;
        let site = doc.site.clone();
        let t = ms(e.timestamp);
        let s = &mut doc.state;
        let events_before: u64 = s.events.values().sum();
        *s.events
            .entry(e.event_type().as_str().to_string())
            .or_default() += 1;
        s.first_seen_ms = Some(s.first_seen_ms.map_or(t, |f| f.min(t)));
        s.last_seen_ms = Some(s.last_seen_ms.map_or(t, |l| l.max(t)));
        let anon = e.anonymous_id.to_string();
        if !s.anonymous_ids.contains(&anon) {
            s.anonymous_ids.push(anon);
            let excess = s.anonymous_ids.len().saturating_sub(20);
            s.anonymous_ids.drain(..excess);
        }
        if let Some(m) = &e.member_id {
            s.member_id = Some(m.to_string());
        }
        let bot = e.context.bot;
        let day = e.timestamp.format("%Y-%m-%d").to_string();
        let an = k.analytics(&site, &day);
        if bot {
            fx.hincr(&an, "bots".into(), 1);
        } else {
            fx.hincr(&an, format!("events:{}", e.event_type().as_str()), 1);
        }

        // Sessions (identify and alias are not visits).
        let visit = !matches!(e.body, EventBody::Identify { .. } | EventBody::Alias { .. });
        let (session_id, session_items_before) = if visit {
            self.session(s, e, t, caps, fx, bot, &an)
        } else {
            (String::new(), Vec::new())
        };

        // Interests, recency lists, path.
        let interactions = interaction(e);
        let is_view = matches!(e.body, EventBody::PageView { .. } | EventBody::Click { .. });
        // How far each interaction feeds the shared models: once per visitor, item and day, and at
        // most `shared_items_per_day` items (order lines always: orders count once by their id).
        let shares: Vec<Share> = interactions
            .iter()
            .map(|(item, ..)| match &e.body {
                EventBody::Purchase { .. } => Share::New,
                _ if bot => Share::OverCap,
                _ => s.share(item, t, self.config.shared_items_per_day as usize),
            })
            .collect();
        if !bot && shares.contains(&Share::OverCap) {
            metrics::counter!("tailor_processor_shared_capped_total").increment(1);
        }
        for ((item, category, brand, w), share) in interactions.iter().zip(&shares) {
            s.interests
                .items
                .add(item, *w, t, caps.half_life_ms, caps.items);
            if let Some(c) = category {
                s.interests
                    .categories
                    .add(c, *w, t, caps.half_life_ms, caps.categories);
                s.interests.recent_categories.add(
                    c,
                    *w,
                    t,
                    caps.short_half_life_ms,
                    caps.categories,
                );
                if is_view {
                    self.count_category_day(s, c, t);
                    self.new_interest(s, c, t, caps, events_before, fx);
                }
            }
            if let Some(b) = brand {
                s.interests
                    .brands
                    .add(b, *w, t, caps.half_life_ms, caps.brands);
            }
            if *share == Share::New {
                self.popularity(
                    &site,
                    item,
                    category.as_deref(),
                    brand.as_deref(),
                    *w,
                    e,
                    fx,
                );
            }
        }
        let hour = e.timestamp.hour();
        match &e.body {
            EventBody::PageView { item_id, .. } | EventBody::Click { item_id, .. } => {
                if let Some(i) = item_id {
                    push_front_distinct(&mut s.recent_items, i.as_str(), caps.recent_items);
                    if !shares.contains(&Share::OverCap) {
                        self.covisit(&site, i.as_str(), &session_items_before, fx);
                        let session = format!("{}/{session_id}", e.anonymous_id);
                        self.session_index(
                            &site,
                            &session,
                            i.as_str(),
                            &session_items_before,
                            t,
                            fx,
                        );
                        self.sequence(&site, i.as_str(), &session_items_before, fx);
                        if matches!(e.body, EventBody::PageView { .. }) {
                            fx.hincr(&an, format!("funnel:{hour:02}:view"), 1);
                        }
                    }
                }
                if matches!(e.body, EventBody::PageView { .. }) {
                    if let Some(page) = page_of(e) {
                        s.path.push(Step {
                            t_ms: t,
                            page: page.clone(),
                        });
                        s.path.sort_by_key(|p| p.t_ms);
                        let excess = s.path.len().saturating_sub(caps.path);
                        s.path.drain(..excess);
                        if !bot {
                            fx.zincr(k.analytics_pages(&site, &day), &page, 1.0);
                        }
                    }
                }
            }
            EventBody::AddToCart { .. } if !bot => {
                fx.hincr(&an, format!("funnel:{hour:02}:cart"), 1);
            }
            EventBody::Purchase { order } => {
                self.purchase(doc, e, order, t, fx, &an, hour);
            }
            EventBody::Identify { traits } => {
                for (name, value) in traits {
                    doc.state.traits.insert(name.clone(), value.clone());
                }
            }
            EventBody::PagePing { dwell_ms } => {
                doc.state.dwell_ms += dwell_ms;
                if !bot {
                    let secs = dwell_ms / 1000;
                    let bucket = DWELL_BUCKETS
                        .iter()
                        .find(|(max, _)| secs < *max)
                        .map_or("10m+", |(_, n)| n);
                    fx.hincr(&an, format!("dwell:{bucket}"), 1);
                }
            }
            EventBody::OfferImpression {
                slot,
                item_ids,
                token,
            } => {
                let stats = k.offer_stats(&site);
                fx.hincr(&stats, format!("{slot}:impressions"), 1);
                fx.hincr(&stats, format!("{slot}:items_shown"), item_ids.len() as i64);
                if let Some(offer) = self.offer(&site, token.as_deref()) {
                    // A held-back offer is an exposure of the control group, not an impression
                    // the cap counts.
                    if offer.variant != campaign::HOLDOUT {
                        campaign::record_impression(&mut doc.state.offers, &offer.campaign, t);
                    }
                    campaign::record_exposure(&mut doc.state.exposures, &offer, t, false);
                    self.count_offer(fx, &site, &offer, "impressions");
                }
            }
            EventBody::OfferClick { slot, token, .. } => {
                fx.hincr(&k.offer_stats(&site), format!("{slot}:clicks"), 1);
                if let Some(offer) = self.offer(&site, token.as_deref()) {
                    campaign::record_exposure(&mut doc.state.exposures, &offer, t, true);
                    self.count_offer(fx, &site, &offer, "clicks");
                }
            }
            _ => {}
        }
        fx.ops.push(WriteOp::Expire {
            key: an,
            seconds: ANALYTICS_TTL_SECS,
        });
        self.judge(
            doc,
            ctx,
            t,
            fx,
            matches!(e.body, EventBody::Purchase { .. }),
        );
    }
}
