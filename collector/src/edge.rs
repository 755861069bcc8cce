//! Edge protections of the collection routes: who the client is, how often it may call, and which
//! browser origins may call at all.
//!
//! CORS ([`tailor_infra::http::browser_cors`]) is answered for the union of every site's
//! `allowed_origins` (a preflight does not say which site it is for); the per-site check happens per
//! event in [`crate::pipeline`], where the site is known, and a mismatch is a dead-lettered `forbidden`
//! rejection rather than an opaque browser error.

use crate::error::IngestError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tailor_core::config::Config;

/// The client address: the first `X-Forwarded-For` hop when configured to trust a proxy, else the
/// peer of the TCP connection.
pub fn client_ip(headers: &HeaderMap, peer: &Peer, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.as_ref().map(|Extension(ConnectInfo(addr))| addr.ip())
}

/// The TCP peer, when the server was started with connect info (`tailor::app` does).
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The user name of an HTTP Basic `Authorization` header (Segment sends its write key there).
pub fn basic_auth_user(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    (!user.is_empty()).then(|| user.to_string())
}

/// A token bucket per client IP.
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trust_forwarded_for: bool,
    checks: AtomicU64,
}

impl RateLimiter {
    pub fn new(config: &Config) -> RateLimiter {
        let c = &config.collector;
        let rate = NonZeroU32::new(c.rate_limit_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(c.rate_limit_burst).unwrap_or(rate);
        RateLimiter {
            limiter: governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            trust_forwarded_for: c.trust_forwarded_for,
            checks: AtomicU64::new(0),
        }
    }

    /// `Err(seconds to wait)` when `ip` is over its quota.
    fn check(&self, ip: IpAddr) -> Result<(), u64> {
        // Forget idle clients now and then so the table stays as small as the active population.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }
}

/// Middleware: 429 with `Retry-After` for a client over its rate.
pub async fn rate_limit(
    State(limiter): State<Arc<RateLimiter>>,
    peer: Peer,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::OPTIONS {
        if let Some(ip) = client_ip(req.headers(), &peer, limiter.trust_forwarded_for) {
            if let Err(retry_after_secs) = limiter.check(ip) {
                return IngestError::RateLimited { retry_after_secs }.into_response();
            }
        }
    }
    next.run(req).await
}

/// Middleware: reads an encoded (compressed) body whole before it is decompressed, when it fits in
/// `limit` bytes as sent. A gzip bomb is refused (413) while decompressing, after a few KiB of
/// output: without this, the rest of its compressed bytes would be left unread, and closing a
/// connection with unread input resets it, so the client may never see the 413. A larger encoded
/// body streams on as it came (and the limit refuses it).
pub async fn read_encoded_body(State(limit): State<usize>, req: Request, next: Next) -> Response {
    use axum::body::Body;
    use futures::StreamExt;
    if !req.headers().contains_key(header::CONTENT_ENCODING) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut read: Vec<axum::body::Bytes> = Vec::new();
    let (mut size, mut broken) = (0usize, None);
    while size <= limit {
        match stream.next().await {
            Some(Ok(chunk)) => {
                size += chunk.len();
                read.push(chunk);
            }
            // A broken upload: hand on what came and the error, for the handler to answer.
            Some(Err(e)) => {
                broken = Some(e);
                break;
            }
            None => {
                let whole = read.concat();
                return next
                    .run(Request::from_parts(parts, Body::from(whole)))
                    .await;
            }
        }
    }
    let rest = futures::stream::iter(read.into_iter().map(Ok))
        .chain(futures::stream::iter(broken.map(Err)))
        .chain(stream);
    next.run(Request::from_parts(parts, Body::from_stream(rest)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        let peer = Some(Extension(ConnectInfo(SocketAddr::from((
            [10, 0, 0, 2],
            4000,
        )))));
        assert_eq!(
            client_ip(&h, &peer, true),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&h, &peer, false),
            Some("10.0.0.2".parse().unwrap())
        );
        assert_eq!(client_ip(&HeaderMap::new(), &None, true), None);
    }

    #[test]
    fn basic_auth_user_is_the_write_key() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic ZGVtbzo=".parse().unwrap()); // "demo:"
        assert_eq!(basic_auth_user(&h).as_deref(), Some("demo"));
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(basic_auth_user(&h), None);
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_auth_user(&h), None);
    }

    #[test]
    fn a_client_over_its_burst_waits() {
        let mut config = Config::default();
        config.collector.rate_limit_per_sec = 1;
        config.collector.rate_limit_burst = 3;
        let l = RateLimiter::new(&config);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        for _ in 0..3 {
            l.check(a).unwrap();
        }
        assert!(l.check(a).unwrap_err() >= 1);
        l.check(b).expect("another client has its own bucket");
    }
}
