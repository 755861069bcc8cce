//! Enrichment: what the collector adds to a validated event before it goes to Kafka, in `context`.
//!
//! Done once, at the edge, so that every consumer (processor, warehouse, outside systems) sees the same
//! answer and nobody re-parses user agents downstream. Pure functions over the request's metadata:
//!
//! - **user agent** → browser, version, OS with the uap-core rules (`ua-parser`, the reference
//!   implementation's Rust port; rules in `collector/data/`), device class from the OS and UA tokens;
//! - **bots**: the `isbot` crate's list of crawlers, monitors and HTTP libraries, plus uap's own
//!   `Spider` family; bot events are kept and flagged, not dropped, so a shop can still see them, and
//!   feed no shared model (popularity, co-visitation);
//! - **referrer** → search / social / email / internal / direct / other, with the service's name, and
//!   the UTM campaign from the page URL (unless the tracker reported one);
//! - **IP** → truncated (default), hashed with a salt, dropped, or raw, per `collector.ip_mode`.
//!
//! **Whose user agent.** Bot detection belongs to the shopper's browser, not to the HTTP client that
//! relays the event. The user agent an event carries (Snowplow `ua`, Segment `context.userAgent`,
//! Tailor `context.user_agent`) describes and judges it. A request's own `User-Agent` is judged only
//! for browser traffic ([`RequestMeta::browser`]: the tag's and trackers' CORS requests, the pixel);
//! for server-side traffic it describes the events only when it is a browser's (a back end forwarding
//! the shopper's), so a shop's back end posting with curl or python-requests feeds the shared models
//! unless its events say they came from a crawler.
//!
//! Timestamps are not touched here: skew correction is part of validation (`RawEvent::validate`).

use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Mutex;
use tailor_core::config::{CollectorConfig, IpMode};
use tailor_core::event::{Campaign, Context, DeviceClass, Event, ReferrerClass, Source};
use tailor_core::generations::Generations;
use url::Url;

/// The uap-core browser and OS rules (see `collector/data/README.md`).
const UAP_RULES: &str = include_str!("../data/uap-regexes.json");
/// Longest user agent kept on an event.
const MAX_UA_LEN: usize = 512;

/// What a handler knows about the HTTP request.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
    /// Whether a browser sent the request itself (a CORS request with an `Origin`, the Snowplow
    /// pixel `GET /i`): then its `User-Agent` is the shopper's. Otherwise a server relays the events
    /// and its `User-Agent` (curl, python-requests, Go-http-client, ...) says nothing about them.
    pub browser: bool,
}

/// What one user agent says: browser, version, OS, device class, and whether it is a bot.
#[derive(Debug, Clone, Default, PartialEq)]
struct Agent {
    /// The user agent as kept (truncated).
    user_agent: String,
    browser: Option<String>,
    browser_version: Option<String>,
    os: Option<String>,
    device: Option<DeviceClass>,
    bot: bool,
}

/// The per-request part of enrichment, computed once for all events of a batch.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The request's `User-Agent` as kept (truncated), whoever sent it; dead letters record it.
    user_agent: Option<String>,
    /// What the request's `User-Agent` says about the shopper: always for browser traffic; for
    /// server-side traffic only when it is a browser's (a back end forwarding the shopper's), never
    /// the relaying HTTP client's.
    agent: Option<Agent>,
    ip: Option<String>,
}

impl RequestContext {
    /// The request's user agent as kept (truncated).
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The client address as `collector.ip_mode` keeps it.
    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }
}

/// Built once at start-up (compiling the rules takes a moment); shared by every request.
pub struct Enricher {
    browsers: ua_parser::user_agent::Extractor<'static>,
    systems: ua_parser::os::Extractor<'static>,
    bots: isbot::Bots,
    ip_mode: IpMode,
    ip_salt: String,
    /// What each user agent seen lately says: a shop's traffic comes from a few thousand distinct
    /// browsers, and the rules (hundreds of regexes) cost far more than a lookup.
    agents: AgentCache,
}

/// User agents kept parsed, at most [`AGENT_CACHE`] of them ([`Generations`]).
struct AgentCache {
    inner: Mutex<Generations<String, Agent>>,
}

/// Distinct user agents [`AgentCache`] holds at most.
const AGENT_CACHE: usize = 8192;

impl Default for AgentCache {
    fn default() -> Self {
        AgentCache {
            inner: Mutex::new(Generations::new(AGENT_CACHE)),
        }
    }
}

impl AgentCache {
    fn get_or(&self, ua: &str, parse: impl FnOnce() -> Agent) -> Agent {
        let lock = || self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = lock().get(ua) {
            return a;
        }
        // Parsed outside the lock: other requests are not held behind the regexes.
        let a = parse();
        lock().put(ua.to_string(), a.clone());
        a
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Enricher {
    pub fn new(config: &CollectorConfig) -> Enricher {
        let rules: ua_parser::Regexes<'static> =
            serde_json::from_str(UAP_RULES).expect("the bundled uap rules parse");
        let browsers = rules
            .user_agent_parsers
            .into_iter()
            .try_fold(ua_parser::user_agent::Builder::new(), |b, p| b.push(p))
            .expect("the bundled uap browser rules parse")
            .build()
            .expect("the bundled uap browser rules compile");
        let systems = rules
            .os_parsers
            .into_iter()
            .try_fold(ua_parser::os::Builder::new(), |b, p| b.push(p))
            .expect("the bundled uap OS rules parse")
            .build()
            .expect("the bundled uap OS rules compile");
        Enricher {
            browsers,
            systems,
            bots: isbot::Bots::default(),
            ip_mode: config.ip_mode,
            ip_salt: config.ip_salt.clone(),
            agents: AgentCache::default(),
        }
    }

    /// Parses what the request says about the client; see [`RequestContext::agent`].
    pub fn request(&self, meta: &RequestMeta) -> RequestContext {
        let ua = meta.user_agent.as_deref().filter(|u| !u.trim().is_empty());
        RequestContext {
            user_agent: ua.map(|u| truncate(u, MAX_UA_LEN).to_string()),
            agent: ua.map(|u| self.agent(u)).filter(|a| meta.browser || !a.bot),
            ip: meta.ip.and_then(|ip| self.ip(ip)),
        }
    }

    /// What `ua` says, from the cache or the rules.
    fn agent(&self, ua: &str) -> Agent {
        let ua = truncate(ua, MAX_UA_LEN);
        self.agents.get_or(ua, || self.parse_agent(ua))
    }

    fn parse_agent(&self, ua: &str) -> Agent {
        let browser = self.browsers.extract(ua);
        let os = self
            .systems
            .extract(ua)
            .map(|o| o.os.to_string())
            .filter(|o| o != "Other");
        let family = browser.as_ref().map(|b| b.family.to_string());
        let bot = self.bots.is_bot(ua) || family.as_deref() == Some("Spider");
        Agent {
            user_agent: truncate(ua, MAX_UA_LEN).to_string(),
            browser_version: browser.as_ref().and_then(|b| b.major).map(str::to_string),
            browser: family.filter(|f| f != "Other"),
            device: Some(if bot {
                DeviceClass::Bot
            } else {
                device_class(ua, os.as_deref())
            }),
            os,
            bot,
        }
    }

    /// Fills the event's `context`; see the module docs. `event_ua` is the user agent the event
    /// itself reports ([`crate::mapped::Mapped::user_agent`]).
    pub fn apply(
        &self,
        rc: &RequestContext,
        event_ua: Option<&str>,
        source: Source,
        event: &mut Event,
    ) {
        let own = event_ua
            .filter(|u| !u.trim().is_empty())
            .map(|u| match &rc.agent {
                Some(a) if a.user_agent == truncate(u, MAX_UA_LEN) => a.clone(),
                _ => self.agent(u),
            });
        // The event's own user agent describes it; a browser's request is judged as well.
        let agent = match (own, &rc.agent) {
            (Some(mut own), Some(request)) => {
                own.bot |= request.bot;
                Some(own)
            }
            (own, request) => own.or_else(|| request.clone()),
        };
        let ctx: &mut Context = &mut event.context;
        ctx.source = Some(source);
        if let Some(a) = agent {
            ctx.user_agent = Some(a.user_agent);
            ctx.browser = a.browser;
            ctx.browser_version = a.browser_version;
            ctx.os = a.os;
            ctx.device = if a.bot {
                Some(DeviceClass::Bot)
            } else {
                a.device
            };
            ctx.bot = a.bot;
        }
        if ctx.ip.is_none() {
            ctx.ip.clone_from(&rc.ip);
        }
        let page = event.url.as_deref().and_then(|u| Url::parse(u).ok());
        if ctx.campaign.is_empty() {
            if let Some(p) = &page {
                ctx.campaign = campaign(p);
            }
        }
        let referrer = event.referrer.as_deref().and_then(|u| Url::parse(u).ok());
        let (class, source_name) = classify(referrer.as_ref(), page.as_ref(), &ctx.campaign);
        ctx.referrer_class = Some(class);
        ctx.referrer_host = referrer
            .as_ref()
            .and_then(|r| r.host_str())
            .map(str::to_string);
        ctx.referrer_source = source_name.map(str::to_string);
    }

    fn ip(&self, ip: IpAddr) -> Option<String> {
        match self.ip_mode {
            IpMode::Drop => None,
            IpMode::Raw => Some(ip.to_string()),
            IpMode::Truncate => Some(truncate_ip(ip).to_string()),
            IpMode::Hash => {
                let mut h = Sha256::new();
                h.update(self.ip_salt.as_bytes());
                h.update(ip.to_string().as_bytes());
                Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// IPv4 to its /24, IPv6 to its /48: enough for coarse geography, not enough to single out a home.
fn truncate_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

/// Tablets announce themselves (iPad, "Tablet", Android without "Mobile"); phones say "Mobile" or run a
/// phone OS; the rest with a desktop OS is a desktop.
fn device_class(ua: &str, os: Option<&str>) -> DeviceClass {
    let l = ua.to_ascii_lowercase();
    let os = os.unwrap_or("");
    if l.contains("ipad") || l.contains("tablet") || (os == "Android" && !l.contains("mobile")) {
        DeviceClass::Tablet
    } else if l.contains("mobile")
        || l.contains("iphone")
        || matches!(os, "iOS" | "Android" | "Windows Phone" | "KaiOS")
    {
        DeviceClass::Mobile
    } else if matches!(
        os,
        "Windows" | "Mac OS X" | "Linux" | "Ubuntu" | "Fedora" | "Chrome OS" | "FreeBSD"
    ) {
        DeviceClass::Desktop
    } else {
        DeviceClass::Other
    }
}

/// UTM parameters of a landing page URL.
fn campaign(page: &Url) -> Campaign {
    let mut c = Campaign::default();
    for (k, v) in page.query_pairs() {
        let v = Some(truncate(&v, 256).to_string()).filter(|v| !v.is_empty());
        match k.as_ref() {
            "utm_source" => c.source = v,
            "utm_medium" => c.medium = v,
            "utm_campaign" => c.name = v,
            "utm_term" => c.term = v,
            "utm_content" => c.content = v,
            _ => {}
        }
    }
    c
}

/// Well-known referring services: (host suffix, class, display name). A suffix matches the host or
/// any subdomain; `google.` style entries match any country domain.
const REFERRERS: &[(&str, ReferrerClass, &str)] = &[
    ("mail.google.com", ReferrerClass::Email, "Gmail"),
    ("outlook.live.com", ReferrerClass::Email, "Outlook.com"),
    ("outlook.office.com", ReferrerClass::Email, "Outlook"),
    ("outlook.office365.com", ReferrerClass::Email, "Outlook"),
    ("mail.yahoo.com", ReferrerClass::Email, "Yahoo! Mail"),
    ("mail.proton.me", ReferrerClass::Email, "Proton Mail"),
    ("mail.aol.com", ReferrerClass::Email, "AOL Mail"),
    ("google.", ReferrerClass::Search, "Google"),
    ("bing.com", ReferrerClass::Search, "Bing"),
    ("duckduckgo.com", ReferrerClass::Search, "DuckDuckGo"),
    ("search.yahoo.com", ReferrerClass::Search, "Yahoo!"),
    ("yahoo.co.jp", ReferrerClass::Search, "Yahoo! Japan"),
    ("baidu.com", ReferrerClass::Search, "Baidu"),
    ("yandex.", ReferrerClass::Search, "Yandex"),
    ("ecosia.org", ReferrerClass::Search, "Ecosia"),
    ("qwant.com", ReferrerClass::Search, "Qwant"),
    ("search.brave.com", ReferrerClass::Search, "Brave Search"),
    ("naver.com", ReferrerClass::Search, "Naver"),
    ("seznam.cz", ReferrerClass::Search, "Seznam"),
    ("startpage.com", ReferrerClass::Search, "Startpage"),
    ("facebook.com", ReferrerClass::Social, "Facebook"),
    ("fb.com", ReferrerClass::Social, "Facebook"),
    ("instagram.com", ReferrerClass::Social, "Instagram"),
    ("t.co", ReferrerClass::Social, "Twitter"),
    ("twitter.com", ReferrerClass::Social, "Twitter"),
    ("x.com", ReferrerClass::Social, "X"),
    ("linkedin.com", ReferrerClass::Social, "LinkedIn"),
    ("lnkd.in", ReferrerClass::Social, "LinkedIn"),
    ("pinterest.", ReferrerClass::Social, "Pinterest"),
    ("reddit.com", ReferrerClass::Social, "Reddit"),
    ("tiktok.com", ReferrerClass::Social, "TikTok"),
    ("youtube.com", ReferrerClass::Social, "YouTube"),
    ("youtu.be", ReferrerClass::Social, "YouTube"),
    ("snapchat.com", ReferrerClass::Social, "Snapchat"),
    ("threads.net", ReferrerClass::Social, "Threads"),
    ("bsky.app", ReferrerClass::Social, "Bluesky"),
    ("vk.com", ReferrerClass::Social, "VK"),
    ("weibo.com", ReferrerClass::Social, "Weibo"),
    ("line.me", ReferrerClass::Social, "LINE"),
    ("whatsapp.com", ReferrerClass::Social, "WhatsApp"),
    ("tumblr.com", ReferrerClass::Social, "Tumblr"),
];

fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

fn known(host: &str) -> Option<(ReferrerClass, &'static str)> {
    let host = strip_www(host);
    REFERRERS.iter().find_map(|&(pattern, class, name)| {
        let hit = if let Some(prefix) = pattern.strip_suffix('.') {
            // `google.` matches google.com, google.co.uk, news.google.de, ...
            host.split('.')
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w[0] == prefix)
                || host.starts_with(pattern)
        } else {
            host == pattern || host.ends_with(&format!(".{pattern}"))
        };
        hit.then_some((class, name))
    })
}

/// Where the visit came from: the referrer's host against the page's own host and the table above;
/// an email campaign (`utm_medium=email`) counts as email whatever the referrer.
fn classify(
    referrer: Option<&Url>,
    page: Option<&Url>,
    campaign: &Campaign,
) -> (ReferrerClass, Option<&'static str>) {
    let email_campaign = campaign
        .medium
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("email") || m.eq_ignore_ascii_case("e-mail"));
    let Some(host) = referrer.and_then(|r| r.host_str()) else {
        return if email_campaign {
            (ReferrerClass::Email, None)
        } else {
            (ReferrerClass::Direct, None)
        };
    };
    let page_host = page.and_then(|p| p.host_str()).map(strip_www);
    if page_host == Some(strip_www(host)) {
        return (ReferrerClass::Internal, None);
    }
    match known(host) {
        Some((class, name)) if !email_campaign => (class, Some(name)),
        Some((_, name)) => (ReferrerClass::Email, Some(name)),
        None if email_campaign => (ReferrerClass::Email, None),
        None => (ReferrerClass::Other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enricher(mode: IpMode) -> Enricher {
        let config = CollectorConfig {
            ip_mode: mode,
            ip_salt: "0123456789abcdef".into(),
            ..CollectorConfig::default()
        };
        Enricher::new(&config)
    }

    /// A browser's own request with user agent `ua`.
    fn rc(e: &Enricher, ua: &str) -> RequestContext {
        e.request(&RequestMeta {
            user_agent: Some(ua.into()),
            ip: None,
            browser: true,
        })
    }

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    /// The context of a page view enriched from a request (`browser`, `request_ua`) whose event
    /// reports `event_ua`.
    fn judged(browser: bool, request_ua: &str, event_ua: Option<&str>) -> Context {
        let en = enricher(IpMode::Truncate);
        let rc = en.request(&RequestMeta {
            user_agent: Some(request_ua.into()),
            ip: None,
            browser,
        });
        let mut e = tailor_core::event::RawEvent::from_json(
            json!({"type": "page_view", "site_id": "demo", "anonymous_id": "a"}),
        )
        .unwrap()
        .validate(chrono::Utc::now())
        .unwrap();
        en.apply(&rc, event_ua, Source::Api, &mut e);
        e.context
    }

    #[test]
    fn user_agents_are_parsed_once_and_the_cache_stays_bounded() {
        let en = enricher(IpMode::Truncate);
        let first = en.agent(CHROME);
        assert_eq!(first.browser.as_deref(), Some("Chrome"));
        assert_eq!(
            en.agent(CHROME),
            first,
            "the cached answer is the parsed one"
        );
        assert_eq!(en.agents.len(), 1);
        // A user agent past the kept length is cached under its kept form.
        let long = format!("{GOOGLEBOT}{}", "x".repeat(2 * MAX_UA_LEN));
        assert!(en.agent(&long).bot);
        assert_eq!(en.agents.len(), 2);
        for i in 0..3 * AGENT_CACHE {
            en.agent(&format!("agent/{i}"));
            assert!(en.agents.len() <= AGENT_CACHE, "{} held", en.agents.len());
        }
        let again = en.agent(CHROME);
        assert_eq!(again, first, "dropped, parsed again, same answer");
    }

    #[test]
    fn server_side_http_clients_are_not_bots() {
        for relay in [
            "curl/8.5.0",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
            "Java/17.0.2",
        ] {
            let c = judged(false, relay, None);
            assert!(!c.bot, "{relay}");
            assert_eq!(
                c.user_agent, None,
                "{relay}: the relay's agent is not the shopper's"
            );
            assert_eq!(c.device, None, "{relay}");
            assert_eq!(c.source, Some(Source::Api));
            // Its event's own user agent describes and judges it.
            let c = judged(false, relay, Some(CHROME));
            assert!(!c.bot, "{relay}");
            assert_eq!(c.browser.as_deref(), Some("Chrome"));
            assert_eq!(c.device, Some(DeviceClass::Desktop));
            assert_eq!(c.user_agent.as_deref(), Some(CHROME));
            let c = judged(false, relay, Some(GOOGLEBOT));
            assert!(c.bot, "{relay} relaying a crawler's event");
            assert_eq!(c.device, Some(DeviceClass::Bot));
        }
        // A back end forwarding the shopper's browser agent as its own describes the events.
        let c = judged(false, CHROME, None);
        assert_eq!(c.browser.as_deref(), Some("Chrome"));
        assert!(!c.bot);
    }

    #[test]
    fn a_browsers_own_request_is_judged() {
        let c = judged(true, GOOGLEBOT, None);
        assert!(c.bot);
        assert_eq!(c.device, Some(DeviceClass::Bot));
        assert!(judged(true, "curl/8.5.0", None).bot);
        // A crawler's request stays a bot whatever its events claim.
        let c = judged(true, GOOGLEBOT, Some(CHROME));
        assert!(c.bot);
        assert_eq!(c.device, Some(DeviceClass::Bot));
        let c = judged(true, CHROME, None);
        assert!(!c.bot);
        assert_eq!(c.browser.as_deref(), Some("Chrome"));
        assert!(judged(true, CHROME, Some(GOOGLEBOT)).bot);
    }

    #[test]
    fn user_agents_give_browser_os_and_device_class() {
        let e = enricher(IpMode::Truncate);
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
             "Chrome", Some("120"), "Windows", DeviceClass::Desktop, false),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
             "Safari", Some("17"), "Mac OS X", DeviceClass::Desktop, false),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
             "Mobile Safari", Some("17"), "iOS", DeviceClass::Mobile, false),
            ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
             "Mobile Safari", Some("16"), "iOS", DeviceClass::Tablet, false),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
             "Chrome Mobile", Some("120"), "Android", DeviceClass::Mobile, false),
            ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
             "Chrome", Some("119"), "Android", DeviceClass::Tablet, false),
            ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
             "Firefox", Some("121"), "Ubuntu", DeviceClass::Desktop, false),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
             "Googlebot", Some("2"), "", DeviceClass::Bot, true),
            ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
             "bingbot", Some("2"), "", DeviceClass::Bot, true),
            ("curl/8.5.0", "curl", Some("8"), "", DeviceClass::Bot, true),
            ("python-requests/2.31.0", "Python Requests", Some("2"), "", DeviceClass::Bot, true),
        ];
        for (ua, browser, version, os, device, bot) in cases {
            let r = rc(&e, ua).agent.unwrap();
            assert_eq!(r.browser.as_deref(), Some(browser), "{ua}");
            assert_eq!(r.browser_version.as_deref(), version, "{ua}");
            assert_eq!(r.os.as_deref().unwrap_or(""), os, "{ua}");
            assert_eq!(r.device, Some(device), "{ua}");
            assert_eq!(r.bot, bot, "{ua}");
        }
        let none = e.request(&RequestMeta::default());
        assert_eq!(none.agent, None);
        let long = "x".repeat(2000);
        assert_eq!(rc(&e, &long).user_agent().unwrap().len(), MAX_UA_LEN);
    }

    #[test]
    fn ip_modes() {
        let v4: IpAddr = "203.0.113.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:85a3:1234:5678:8a2e:370:7334".parse().unwrap();
        let ip = |mode, ip| {
            enricher(mode)
                .request(&RequestMeta {
                    user_agent: None,
                    ip: Some(ip),
                    browser: true,
                })
                .ip
        };
        assert_eq!(ip(IpMode::Truncate, v4).as_deref(), Some("203.0.113.0"));
        assert_eq!(ip(IpMode::Truncate, v6).as_deref(), Some("2001:db8:85a3::"));
        assert_eq!(ip(IpMode::Drop, v4), None);
        assert_eq!(ip(IpMode::Raw, v4).as_deref(), Some("203.0.113.77"));
        let h = ip(IpMode::Hash, v4).unwrap();
        assert_eq!(h.len(), 64);
        assert_eq!(
            ip(IpMode::Hash, v4).unwrap(),
            h,
            "stable, so still joinable"
        );
        assert_ne!(ip(IpMode::Hash, v6).unwrap(), h);
        assert!(!h.contains("203"));
    }

    fn enriched(url: Option<&str>, referrer: Option<&str>) -> Context {
        let mut raw = json!({"type": "page_view", "site_id": "demo", "anonymous_id": "a"});
        if let Some(u) = url {
            raw["url"] = json!(u);
        }
        if let Some(r) = referrer {
            raw["referrer"] = json!(r);
        }
        let mut e = tailor_core::event::RawEvent::from_json(raw)
            .unwrap()
            .validate(chrono::Utc::now())
            .unwrap();
        let en = enricher(IpMode::Truncate);
        en.apply(&RequestContext::default(), None, Source::Api, &mut e);
        e.context
    }

    #[test]
    fn referrers_are_classified() {
        let page = Some("https://shop.example/p/1");
        let cases = [
            (None, ReferrerClass::Direct, None),
            (
                Some("https://www.google.co.uk/"),
                ReferrerClass::Search,
                Some("Google"),
            ),
            (
                Some("https://news.google.de/x"),
                ReferrerClass::Search,
                Some("Google"),
            ),
            (
                Some("https://duckduckgo.com/?q=tent"),
                ReferrerClass::Search,
                Some("DuckDuckGo"),
            ),
            (
                Some("https://l.facebook.com/l.php"),
                ReferrerClass::Social,
                Some("Facebook"),
            ),
            (
                Some("https://t.co/abc"),
                ReferrerClass::Social,
                Some("Twitter"),
            ),
            (
                Some("https://mail.google.com/mail/u/0/"),
                ReferrerClass::Email,
                Some("Gmail"),
            ),
            (
                Some("https://www.shop.example/cart"),
                ReferrerClass::Internal,
                None,
            ),
            (
                Some("https://blog.example.org/post"),
                ReferrerClass::Other,
                None,
            ),
            (Some("https://notgoogle.com/"), ReferrerClass::Other, None),
        ];
        for (referrer, class, name) in cases {
            let c = enriched(page, referrer);
            assert_eq!(c.referrer_class, Some(class), "{referrer:?}");
            assert_eq!(c.referrer_source.as_deref(), name, "{referrer:?}");
            assert_eq!(c.source, Some(Source::Api));
        }
    }

    #[test]
    fn utm_parameters_become_the_campaign() {
        let c = enriched(
            Some("https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale&utm_term=tent&utm_content=hero&x=1"),
            None,
        );
        assert_eq!(
            c.campaign,
            Campaign {
                source: Some("newsletter".into()),
                medium: Some("email".into()),
                name: Some("spring sale".into()),
                term: Some("tent".into()),
                content: Some("hero".into()),
            }
        );
        assert_eq!(
            c.referrer_class,
            Some(ReferrerClass::Email),
            "an email campaign"
        );
        let c = enriched(
            Some("https://shop.example/?utm_source=fb&utm_medium=cpc"),
            Some("https://facebook.com/"),
        );
        assert_eq!(c.referrer_class, Some(ReferrerClass::Social));
        assert_eq!(c.campaign.medium.as_deref(), Some("cpc"));
    }
}
