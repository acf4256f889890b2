//! Errors as the reader gets them: under `/api/` a JSON object `{"error", "param"}`, on
//! pages an HTML page with the navigation. Handlers return [`PageError`]; the
//! [`error_pages`] layer dresses every error response (the router's own 404s and 400s, the
//! token's 401, the host check's 421 too) for the address it answers.

use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// Why a request failed.
#[derive(Debug)]
pub enum PageError {
    /// A parameter is wrong; `param` names it (empty when none does).
    BadRequest {
        param: String,
        message: String,
    },
    NotFound(String),
    Store(StoreError),
    Internal(String),
}

impl PageError {
    pub fn bad(param: &str, message: String) -> PageError {
        PageError::BadRequest {
            param: param.to_string(),
            message,
        }
    }

    pub fn message(&self) -> String {
        match self {
            PageError::BadRequest { message, .. } => message.clone(),
            PageError::NotFound(m) | PageError::Internal(m) => m.clone(),
            PageError::Store(e) => e.to_string(),
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            PageError::BadRequest { param, .. } if !param.is_empty() => Some(param),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            PageError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Store(_) | PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Store(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Internal(format!("rendering the page: {e}"))
    }
}

/// The parameter an error response is about, for the JSON form.
#[derive(Clone, Debug)]
struct ErrorParam(String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message()),
        )
            .into_response();
        if let Some(p) = self.param() {
            res.extensions_mut().insert(ErrorParam(p.to_string()));
        }
        res
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    reason: String,
    message: String,
    param: Option<String>,
}

/// `{"error": …, "param": …}` on `/api/`, an HTML page with the navigation elsewhere, for
/// every error response that is plain text.
pub async fn error_pages(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return res;
    }
    let param = res.extensions().get::<ErrorParam>().map(|p| p.0.clone());
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    if api {
        let body = serde_json::json!({ "error": message, "param": param });
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Response::from_parts(parts, Body::from(body.to_string()));
    }
    let page = ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error").to_string(),
        message,
        param,
    };
    match page.render() {
        Ok(html) => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Response::from_parts(parts, Body::from(html))
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}
