//! The web dashboard: server-rendered pages over the store, each with the JSON API it is
//! built on. Handlers only read the database (a read-only [`Reader`](crate::store::Reader) per request, on the
//! blocking pool); every filter is a bound SQL parameter.
//!
//! Safe by construction, since captures are attacker-controlled: templates escape every
//! value (askama's default; no `|safe` anywhere), every response carries a strict
//! Content-Security-Policy and `nosniff`, the only script is the dashboard's own
//! `/static/live.js` (which builds nodes and sets `textContent`, never HTML; Trusted Types
//! in the CSP make the browser enforce that), pages work without it, and a token, when set,
//! guards every route.
//!
//! - `pages`: the list pages and their APIs; `exchange`: the exchange page;
//! - `pcap`: a connection's frames, read again from the capture file, as a pcap download;
//! - [`filters`]: the findings filters (substring, exact, classes) and their resolution;
//! - `errors`: error responses, as JSON under `/api/` and as pages elsewhere;
//! - [`charts`]: time-bucket rollups as SVG geometry;
//! - [`live`]: `/api/events`, the server-sent event stream of live updates;
//! - [`mod@serve`]: binding, the token rule and the server loop.

pub mod charts;
mod errors;
mod exchange;
pub mod filters;
pub mod live;
mod pages;
mod pcap;
pub mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::rules::RuleSet;

pub use serve::{ServeError, serve};

/// The Content-Security-Policy of every response: nothing loads but the dashboard's own
/// stylesheet, images and script files (`/static/live.js`, `/static/copy.js`; no inline script, no inline
/// style, no other origin), and the event stream from the same origin. Trusted Types with
/// no policy make the browser refuse any HTML string sink (`innerHTML`, `outerHTML`,
/// `insertAdjacentHTML`, `document.write`), so live updates can only build nodes.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
    style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

const APP_CSS: &str = include_str!("../../dashboard/static/app.css");
const LIVE_JS: &str = include_str!("../../dashboard/static/live.js");
const COPY_JS: &str = include_str!("../../dashboard/static/copy.js");

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: PathBuf,
    rules: Arc<RuleSet>,
    token: Option<String>,
    /// The address the server listens on: its `Host` is served besides the loopback names.
    listen: Option<SocketAddr>,
}

impl AppState {
    /// The dashboard of the database at `db`, explaining findings with `rules`.
    pub fn new(db: impl Into<PathBuf>, rules: Arc<RuleSet>) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                db: db.into(),
                rules,
                token: None,
                listen: None,
            }),
        }
    }

    /// Requires every request to carry `token` (`Authorization: Bearer …`, `?token=…`, or
    /// the cookie set after a `?token=` visit).
    pub fn with_token(self, token: Option<String>) -> AppState {
        let inner = Inner {
            db: self.inner.db.clone(),
            rules: Arc::clone(&self.inner.rules),
            token,
            listen: self.inner.listen,
        };
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Names the address the server listens on, whose `Host` (besides `localhost`,
    /// `127.0.0.1` and `[::1]`) is served without a token.
    pub fn with_listen(self, listen: Option<SocketAddr>) -> AppState {
        let inner = Inner {
            db: self.inner.db.clone(),
            rules: Arc::clone(&self.inner.rules),
            token: self.inner.token.clone(),
            listen,
        };
        AppState {
            inner: Arc::new(inner),
        }
    }

    pub fn db(&self) -> &std::path::Path {
        &self.inner.db
    }

    pub fn rules(&self) -> &RuleSet {
        &self.inner.rules
    }
}

/// The dashboard's routes, with the security headers (and the token check, when a token
/// is set) on every response, including errors and 404s.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/api/overview", get(pages::overview_api))
        .route("/issues", get(pages::issues))
        .route("/api/issues", get(pages::issues_api))
        .route("/findings", get(pages::findings))
        .route("/findings.csv", get(pages::findings_csv))
        .route("/api/findings", get(pages::findings_api))
        .route("/exchanges/{id}", get(exchange::exchange))
        .route("/api/exchanges/{id}", get(exchange::exchange_api))
        .route(
            "/exchanges/{id}/connection.pcap",
            get(pcap::connection_pcap),
        )
        .route("/exchanges/{id}/bytes", get(pcap::exchange_bytes))
        .route("/endpoints", get(pages::endpoints))
        .route("/api/endpoints", get(pages::endpoints_api))
        .route("/rules", get(pages::rules))
        .route("/api/rules", get(pages::rules_api))
        .route("/api/events", get(live::events))
        .route("/static/app.css", get(app_css))
        .route("/static/live.js", get(live_js))
        .route("/static/copy.js", get(copy_js))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn_with_state(state.clone(), check_host))
        .layer(middleware::from_fn(errors::error_pages))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

async fn live_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        LIVE_JS,
    )
        .into_response()
}

async fn copy_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        COPY_JS,
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "there is no page at this address\n").into_response()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Findings are evidence of other people's traffic: no cache keeps a copy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Without a token, serves only requests whose `Host` names this server: the listen
/// address, `localhost`, `127.0.0.1` or `[::1]` (any port). A page elsewhere that points
/// its own name at 127.0.0.1 (DNS rebinding) sends its own name and gets 421. A request
/// without `Host` (HTTP/1.0 tools; browsers always send one) is served.
async fn check_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.inner.token.is_some() {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_string())
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()));
    match host {
        Some(h) if !host_allowed(&h, state.inner.listen) => (
            StatusCode::MISDIRECTED_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "this dashboard answers only to localhost, 127.0.0.1, [::1]{}; the Host {:?} \
                 names another site (to serve other names, listen elsewhere with --token)\n",
                state
                    .inner
                    .listen
                    .map(|a| format!(" and {}", a.ip()))
                    .unwrap_or_default(),
                h
            ),
        )
            .into_response(),
        _ => next.run(req).await,
    }
}

/// Whether a `Host` value (`name[:port]`, IPv6 in brackets) names this server.
pub fn host_allowed(host: &str, listen: Option<SocketAddr>) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) if tail.is_empty() || tail.starts_with(':') => format!("[{ip}]"),
            _ => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, _port)) => name.to_string(),
            None => host.clone(),
        }
    };
    let name = name.strip_suffix('.').unwrap_or(&name);
    if matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
        return true;
    }
    listen.is_some_and(|a| {
        let ip = a.ip().to_canonical();
        match ip {
            std::net::IpAddr::V4(v4) => name == v4.to_string(),
            std::net::IpAddr::V6(v6) => name == format!("[{v6}]"),
        }
    })
}

const TOKEN_COOKIE: &str = "wirelint_token";

/// Lets a request through when no token is set or when it carries the token (the
/// `Authorization` scheme is case-insensitive, RFC 9110 §11.1); else 401. A request
/// authorised by `?token=` gets the token as an HttpOnly cookie and a redirect to the same
/// address without it, so that the pages' links (which do not repeat it) keep working.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.inner.token.as_deref() else {
        return next.run(req).await;
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && same(t.trim(), token));
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == TOKEN_COOKIE && same(v, token));
    let query = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, v)| k == "token" && same(v, token));
    if bearer || cookie {
        return next.run(req).await;
    }
    if query {
        // Set the cookie and send the browser to the same address without the token, so
        // that it stays out of the address bar, the history and any copied link.
        let rest: Vec<&str> = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && kv.split_once('=').map_or(*kv, |(k, _)| k) != "token")
            .collect();
        let to = if rest.is_empty() {
            req.uri().path().to_string()
        } else {
            format!("{}?{}", req.uri().path(), rest.join("&"))
        };
        let mut res = axum::response::Redirect::to(&to).into_response();
        // The token is ours or the user's and contains no `;` (checked at start-up).
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
        )) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        return res;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"wirelint\"")],
        "this dashboard needs its token: send `Authorization: Bearer TOKEN` or add ?token=TOKEN\n",
    )
        .into_response()
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
