//! Sessions: finding or opening an event's session (by its id, else by the inactivity timeout),
//! its channel and referrer, pages, dwell, items; the visit-frequency-drop and new-channel signals
//! fire when a session opens.

use super::*;

impl Folder<'_> {
    /// Finds or opens the event's session; returns its id and its items before this event (newest first).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn session(
        &self,
        s: &mut SubjectState,
        e: &Event,
        t: i64,
        caps: &Caps,
        fx: &mut Effects<'_>,
        bot: bool,
        an: &str,
    ) -> (String, Vec<String>) {
        let timeout = i64::from(self.config.session_timeout_mins) * 60_000;
        let sessions = &mut s.sessions;
        let found = match &e.session_id {
            Some(id) => sessions.recent.iter().rposition(|x| x.id == id.as_str()),
            None => sessions.recent.iter().rposition(|x| {
                t >= x.start_ms - timeout && t <= x.end_ms + timeout && x.id.starts_with('~')
            }),
        };
        let idx = match found {
            Some(i) => i,
            None => {
                let (channel, referrer) = channel_of(e);
                let previous_start = sessions.recent.last().map(|x| x.start_ms);
                if let Some(prev) = previous_start {
                    let gap = (t - prev) as f64 / DAY_MS as f64;
                    if gap > 0.0 {
                        let usual = sessions.gap_days;
                        if usual.n >= 3
                            && gap >= 2.0
                            && gap > 3.0 * usual.mean.max(1.0 / 24.0)
                            && self.signal(&mut s.signals, "visit_frequency_drop", t)
                        {
                            fx.change(
                                None,
                                ChangeKind::VisitFrequencyDrop {
                                    gap_days: gap,
                                    usual_gap_days: usual.mean,
                                },
                            );
                        }
                        s.sessions.gap_days.push(gap);
                    }
                }
                let sessions = &mut s.sessions;
                if sessions.count >= 3
                    && channel != "direct"
                    && !sessions.channels.contains_key(&channel)
                    && self.signal(&mut s.signals, &format!("new_channel:{channel}"), t)
                {
                    fx.change(
                        Some(&channel),
                        ChangeKind::NewChannel {
                            channel: channel.clone(),
                            referrer: referrer.clone(),
                        },
                    );
                }
                let sessions = &mut s.sessions;
                sessions.count += 1;
                *sessions.channels.entry(channel.clone()).or_default() += 1;
                if let Some(r) = &referrer {
                    *sessions.referrers.entry(r.clone()).or_default() += 1;
                    cap_counts(&mut sessions.referrers, 30);
                }
                if !bot {
                    fx.hincr(an, "sessions".into(), 1);
                    fx.hincr(an, format!("channel:{channel}"), 1);
                    if let Some(r) = &referrer {
                        let day = an.rsplit(':').next().unwrap_or_default().to_string();
                        fx.zincr(fx.keys.analytics_referrers(fx.site, &day), r, 1.0);
                    }
                }
                let id = match &e.session_id {
                    Some(id) => id.to_string(),
                    None => format!("~{t}"),
                };
                // Only the session in progress is read click by click: older ones keep their
                // distinct items, so a profile holds one session's clicks.
                for older in &mut sessions.recent {
                    older.clicks = Vec::new();
                }
                sessions.recent.push(Session {
                    id: id.clone(),
                    start_ms: t,
                    end_ms: t,
                    channel,
                    referrer,
                    ..Default::default()
                });
                sessions.recent.sort_by_key(|x| x.start_ms);
                let excess = sessions.recent.len().saturating_sub(caps.sessions);
                sessions.recent.drain(..excess);
                sessions
                    .recent
                    .iter()
                    .rposition(|x| x.id == id)
                    .unwrap_or(sessions.recent.len() - 1)
            }
        };
        let sess = &mut s.sessions.recent[idx];
        sess.start_ms = sess.start_ms.min(t);
        sess.end_ms = sess.end_ms.max(t);
        let before = sess.items.clone();
        let id = sess.id.clone();
        match &e.body {
            EventBody::PageView { item_id, .. } => {
                sess.pages += 1;
                s.sessions.pages += 1;
                let sess = &mut s.sessions.recent[idx];
                if let Some(page) = page_of(e) {
                    if sess.entry.is_none() || t <= sess.start_ms {
                        sess.entry = Some(page.clone());
                    }
                    if t >= sess.end_ms {
                        sess.exit = Some(page);
                    }
                }
                if let Some(i) = item_id {
                    sess.push_click(i.as_str(), self.config.session_items as usize);
                }
            }
            EventBody::Click {
                item_id: Some(i), ..
            } => sess.push_click(i.as_str(), self.config.session_items as usize),
            EventBody::PagePing { dwell_ms } => sess.dwell_ms += dwell_ms,
            _ => {}
        }
        (id, before)
    }
}
