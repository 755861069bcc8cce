//! Keys and tenant isolation, checked once for every route of every service.
//!
//! Each service declares its routes in a [`Routes`] table: method, path, [`Access`] and handler. The
//! same table builds the service's router ([`Routes::into_router`]) and lists its routes
//! ([`Routes::specs`]) for the isolation test, which walks every one of them; a route cannot be
//! added without saying who may call it, and a request to a route the table does not list is
//! refused (fail closed).
//!
//! [`guard`] runs after routing (a route layer, so it knows the matched path):
//! - a public route is served whatever the request carries;
//! - elsewhere, a `Bearer` secret that matches no key is 401 (`WWW-Authenticate: Bearer`);
//! - a route needing a scope for a site answers 401 without a key (unless the site is open), 403 for
//!   a key of another site or another scope;
//! - a route spanning sites ([`Access::OwnSite`]) shows a key its own site only: its `site` filter
//!   is set to the key's site, and a filter naming another site is 403;
//! - recommendations are public for a visitor, and need a `serve` key once they name a member;
//! - collection passes the key on ([`CollectKey`]): whether a server-side request may write an
//!   event depends on the event's site, judged in the collector's pipeline.

use crate::http::{error_response, error_with};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tailor_core::access::{Grant, Keyring, Scope};
use tailor_core::config::Config;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health and metrics, the tag, the ops and demo pages, the browser doors.
    Public,
    /// A key of this scope for the site named by `?site=`.
    Site(Scope),
    /// A key of this scope; the route spans sites, and shows a key its own site only (`?site=` is
    /// an optional filter, set to the key's site).
    OwnSite(Scope),
    /// Public for a visitor; a `serve` key of the site once the request names a member (`?member=`
    /// or the JSON body's `member`; the site from `?site=` or the body's `site`).
    Recommendations,
    /// The collection doors: a browser's request is judged by origin, a server-side one by a
    /// `collect` key of each event's site (in the pipeline).
    Collect,
}

/// One route: what the isolation test walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    /// The path as routed (`/v1/profiles/{member}`).
    pub path: &'static str,
    pub access: Access,
}

/// A service's route table, building its router.
pub struct Routes<S> {
    specs: Vec<RouteSpec>,
    router: Router<S>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            specs: Vec::new(),
            router: Router::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `method path`, served by `handler` (a method router for that one method, with any
    /// layers of its own).
    pub fn route(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<S>,
    ) -> Self {
        self.specs.push(RouteSpec {
            method,
            path,
            access,
        });
        self.router = self.router.route(path, handler);
        self
    }

    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.specs.extend(other.specs);
        self.router = self.router.merge(other.router);
        self
    }

    /// Applies a layer to every route added so far (body limits, timeouts, CORS).
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Request>>::Response: axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<Request>>::Error: Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<Request>>::Future: Send + 'static,
    {
        self.router = self.router.layer(layer);
        self
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The router, every route behind [`guard`].
    pub fn into_router(self, gate: Arc<Gate>) -> Router<S> {
        let mut table: HashMap<&'static str, Vec<(Method, Access)>> = HashMap::new();
        for s in &self.specs {
            table
                .entry(s.path)
                .or_default()
                .push((s.method.clone(), s.access));
        }
        let guarded = Arc::new(Guarded {
            gate,
            table: Arc::new(table),
        });
        self.router
            .route_layer(axum::middleware::from_fn_with_state(guarded, guard))
    }
}

/// The keys and open sites of a configuration.
#[derive(Debug, Default)]
pub struct Gate {
    keys: Keyring,
    open: HashSet<String>,
    /// Every site is open (the built-in demo site without a configuration file).
    all_open: bool,
}

impl Gate {
    pub fn new(config: &Config) -> Arc<Gate> {
        let open: HashSet<String> = config
            .sites
            .iter()
            .filter(|s| s.open)
            .map(|s| s.id.clone())
            .collect();
        Arc::new(Gate {
            keys: Keyring::new(config),
            all_open: config.sites.iter().all(|s| s.open),
            open,
        })
    }

    fn is_open(&self, site: Option<&str>) -> bool {
        self.all_open || site.is_some_and(|s| self.open.contains(s))
    }
}

struct Guarded {
    gate: Arc<Gate>,
    /// Path as routed → each method's access.
    table: Arc<HashMap<&'static str, Vec<(Method, Access)>>>,
}

/// The key a collection request presented (if any), for the pipeline's per-event check.
#[derive(Debug, Clone, Default)]
pub struct CollectKey(pub Option<Grant>);

/// Longest page-context body read to find its site and member (the recommender's own limit is
/// smaller: a cart lists at most 100 items).
const MAX_CONTEXT_BODY: usize = 256 * 1024;

/// Why the guard refuses a request, the `reason` of `tailor_http_auth_refused_total`.
pub const REFUSALS: [&str; 5] = [
    "no_key",
    "unknown_key",
    "other_site",
    "wrong_scope",
    "no_rule",
];

/// Counts a refusal (the one place `tailor_http_auth_refused_total` is emitted).
fn count(reason: &'static str) {
    debug_assert!(REFUSALS.contains(&reason));
    metrics::counter!("tailor_http_auth_refused_total", "reason" => reason).increment(1);
}

fn unauthorized(reason: &'static str, message: impl Into<String>) -> Response {
    count(reason);
    let mut r = error_response(StatusCode::UNAUTHORIZED, "unauthorized", message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tailor\""),
    );
    r
}

fn forbidden(reason: &'static str, message: impl Into<String>) -> Response {
    count(reason);
    error_response(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The secret of an `Authorization: Bearer` header; other schemes (a Segment client's Basic write
/// key) are not Tailor keys.
fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
}

/// The query parameter `name`; refused when given more than once, since the handler's parsing may
/// keep another one than the guard checked (`?site=a&site=b`).
fn query_param(req: &Request, name: &str) -> Result<Option<String>, Box<Response>> {
    let Some(q) = req.uri().query() else {
        return Ok(None);
    };
    let mut values = url_pairs(q).filter(|(k, _)| k == name).map(|(_, v)| v);
    let first = values.next();
    if values.next().is_some() {
        return Err(Box::new(error_with(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("{name}: is given more than once"),
            Some(name.to_string()),
            vec![],
        )));
    }
    Ok(first)
}

fn url_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .unwrap_or_default()
        .into_iter()
}

/// The refusal, unless `grant` (or the site being open) allows `scope` on `site`.
fn refusal(
    gate: &Gate,
    grant: Option<&Grant>,
    site: Option<&str>,
    scope: Scope,
) -> Option<Response> {
    match grant {
        None if gate.is_open(site) => None,
        None => Some(unauthorized(
            "no_key",
            format!("this route needs a key of scope {scope} (Authorization: Bearer <secret>)"),
        )),
        Some(g) if site.is_some_and(|s| s != g.site) => Some(forbidden(
            "other_site",
            format!(
                "key {:?} is for site {:?}, not {:?}",
                g.name,
                g.site,
                site.unwrap_or_default()
            ),
        )),
        Some(g) if g.scope != scope => Some(forbidden(
            "wrong_scope",
            format!(
                "key {:?} has scope {}; this route needs {scope}",
                g.name, g.scope
            ),
        )),
        Some(_) => None,
    }
}

/// The route layer of every service (see the module docs).
async fn guard(State(g): State<Arc<Guarded>>, mut req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        // A CORS preflight carries no credentials; the request it announces is checked.
        return next.run(req).await;
    }
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let access = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| g.table.get(p.as_str()))
        .and_then(|methods| methods.iter().find(|(m, _)| *m == method))
        .map(|(_, a)| *a);
    let Some(access) = access else {
        return forbidden("no_rule", "this route has no access rule");
    };
    if access == Access::Public {
        // Whatever credentials a browser or probe sends along, a public route does not read them.
        return next.run(req).await;
    }
    let grant = match bearer(&req) {
        Some(secret) => match g.gate.keys.find(secret) {
            Some(grant) => Some(grant.clone()),
            None => return unauthorized("unknown_key", "unknown key"),
        },
        None => None,
    };
    let gate = &g.gate;
    match access {
        Access::Public => unreachable!("served above"),
        Access::Collect => {
            if let Some(k) = grant.as_ref().filter(|k| k.scope != Scope::Collect) {
                return forbidden(
                    "wrong_scope",
                    format!(
                        "key {:?} has scope {}; collection needs collect",
                        k.name, k.scope
                    ),
                );
            }
            req.extensions_mut().insert(CollectKey(grant));
        }
        Access::Site(scope) => {
            let site = match query_param(&req, "site") {
                Ok(s) => s,
                Err(r) => return *r,
            };
            if let Some(r) = refusal(gate, grant.as_ref(), site.as_deref(), scope) {
                return r;
            }
        }
        Access::OwnSite(scope) => {
            let site = match query_param(&req, "site") {
                Ok(s) => s,
                Err(r) => return *r,
            };
            if let Some(r) = refusal(gate, grant.as_ref(), site.as_deref(), scope) {
                return r;
            }
            if let (Some(k), None) = (&grant, site) {
                restrict_to(&mut req, &k.site);
            }
        }
        Access::Recommendations => {
            let (site, member) = if req.method() == Method::POST {
                let (parts, body) = req.into_parts();
                let Ok(bytes) = axum::body::to_bytes(body, MAX_CONTEXT_BODY).await else {
                    return error_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        format!("a page context is at most {MAX_CONTEXT_BODY} bytes"),
                    );
                };
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let text = |f: &str| v.get(f).and_then(|x| x.as_str()).map(str::to_string);
                let found = (text("site"), text("member"));
                req = Request::from_parts(parts, Body::from(bytes));
                found
            } else {
                match (query_param(&req, "site"), query_param(&req, "member")) {
                    (Ok(site), Ok(member)) => (site, member),
                    (Err(r), _) | (_, Err(r)) => return *r,
                }
            };
            if member.is_some_and(|m| !m.is_empty()) {
                if let Some(r) = refusal(gate, grant.as_ref(), site.as_deref(), Scope::Serve) {
                    return r;
                }
            }
        }
    }
    next.run(req).await
}

/// Adds `site=<site>` to the query, so a listing across sites shows the key's own site only.
fn restrict_to(req: &mut Request, site: &str) {
    let uri = req.uri();
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .map(|q| url_pairs(q).collect())
        .unwrap_or_default();
    pairs.push(("site".into(), site.into()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let path_and_query = format!("{}?{query}", uri.path());
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(new) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    // Paths as constants: the tests that read the route calls of the sources skip these.
    const OPEN: &str = "/open";
    const LIST: &str = "/list";

    fn app() -> Router {
        let config = Config::from_toml(&format!(
            "[[sites]]\nid = \"a\"\n[[sites.keys]]\nname = \"ops\"\nscope = \"admin\"\nsha256 = \"{}\"\n",
            tailor_core::access::digest_hex("tlr_a")
        ))
        .unwrap();
        let echo = |req: Request| async move { req.uri().query().unwrap_or_default().to_string() };
        Routes::<()>::new()
            .route(Method::GET, OPEN, Access::Public, get(|| async {}))
            .route(Method::GET, LIST, Access::OwnSite(Scope::Admin), get(echo))
            .into_router(Gate::new(&config))
    }

    async fn call(method: Method, uri: &str, auth: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = app()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_guard_reads_bearer_keys_and_narrows_listings_to_the_key_site() {
        let ok = Some("Bearer tlr_a");
        assert_eq!(
            call(Method::GET, "/list?limit=5", ok).await,
            (StatusCode::OK, "limit=5&site=a".into())
        );
        assert_eq!(
            call(Method::GET, "/list?site=a", Some("bearer  tlr_a"))
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(Method::GET, "/list?site=b", ok).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(call(Method::HEAD, "/list", ok).await.0, StatusCode::OK);
        for refused in [
            None,
            Some("Bearer tlr_b"),
            Some("Basic dGxyX2E6"),
            Some("tlr_a"),
        ] {
            assert_eq!(
                call(Method::GET, "/list", refused).await.0,
                StatusCode::UNAUTHORIZED,
                "{refused:?}"
            );
        }
        // The handler might read another `site` than the guard checked: refused.
        assert_eq!(
            call(Method::GET, "/list?site=a&site=b", ok).await.0,
            StatusCode::BAD_REQUEST
        );
        // A public route does not read credentials at all.
        assert_eq!(
            call(Method::GET, "/open", Some("Bearer tlr_b")).await.0,
            StatusCode::OK
        );
    }
}
