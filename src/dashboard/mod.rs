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
//! - `pages`: the page and API handlers;
//! - [`charts`]: time-bucket rollups as SVG geometry;
//! - [`live`]: `/api/events`, the server-sent event stream of live updates;
//! - [`mod@serve`]: binding, the token rule and the server loop.

pub mod charts;
pub mod live;
mod pages;
pub mod serve;

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
/// stylesheet, images and script file (`/static/live.js`; no inline script, no inline
/// style, no other origin), and the event stream from the same origin. Trusted Types with
/// no policy make the browser refuse any HTML string sink (`innerHTML`, `outerHTML`,
/// `insertAdjacentHTML`, `document.write`), so live updates can only build nodes.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
    style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

const APP_CSS: &str = include_str!("../../dashboard/static/app.css");
const LIVE_JS: &str = include_str!("../../dashboard/static/live.js");

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: PathBuf,
    rules: Arc<RuleSet>,
    token: Option<String>,
}

impl AppState {
    /// The dashboard of the database at `db`, explaining findings with `rules`.
    pub fn new(db: impl Into<PathBuf>, rules: Arc<RuleSet>) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                db: db.into(),
                rules,
                token: None,
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
        .route("/findings", get(pages::findings))
        .route("/api/findings", get(pages::findings_api))
        .route("/exchanges/{id}", get(pages::exchange))
        .route("/api/exchanges/{id}", get(pages::exchange_api))
        .route("/endpoints", get(pages::endpoints))
        .route("/api/endpoints", get(pages::endpoints_api))
        .route("/rules", get(pages::rules))
        .route("/api/rules", get(pages::rules_api))
        .route("/api/events", get(live::events))
        .route("/static/app.css", get(app_css))
        .route("/static/live.js", get(live_js))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
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

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
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
    res
}

const TOKEN_COOKIE: &str = "wirelint_token";

/// Lets a request through when no token is set or when it carries the token; else 401.
/// A request authorised by `?token=` gets the token as an HttpOnly cookie, so that the
/// pages' links (which do not repeat it) keep working in a browser.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.inner.token.as_deref() else {
        return next.run(req).await;
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim(), token));
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
        let mut res = next.run(req).await;
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
