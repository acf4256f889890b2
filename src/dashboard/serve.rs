//! Binding and running the dashboard server. Loopback needs nothing; any other address
//! needs a token, which every request must then carry.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use super::{AppState, router};

/// The address `serve` listens on when none is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "{text:?} is not an address to listen on (expected HOST:PORT, e.g. {DEFAULT_LISTEN}; with `analyze`, put a bare --serve after the capture files or write --serve=ADDR)"
    )]
    BadAddress { text: String },
    #[error(
        "refusing to listen on {addr} without a token: only loopback addresses are served without one; pass --token TOKEN (every request must then carry it)"
    )]
    NeedsToken { addr: SocketAddr },
    #[error("the token must be 16 to 256 characters, each a letter, a digit or one of - . _ ~")]
    BadToken,
    #[error("cannot listen on {addr}: {}", bind_hint(error))]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

fn bind_hint(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the address is in use (another server runs there; pick another port with --listen)"
                .into()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges)".into()
        }
        _ => e.to_string(),
    }
}

/// Parses `HOST:PORT` (an IP address or a name that resolves).
pub fn parse_listen(text: &str) -> Result<SocketAddr, ServeError> {
    let bad = || ServeError::BadAddress { text: text.into() };
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)
}

/// Whether the dashboard may listen on `addr` with `token`: loopback always, anything else
/// only with a well-formed token.
pub fn check_listen(addr: SocketAddr, token: Option<&str>) -> Result<(), ServeError> {
    if let Some(t) = token
        && (!(16..=256).contains(&t.len())
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)))
    {
        return Err(ServeError::BadToken);
    }
    if token.is_none() && !addr.ip().to_canonical().is_loopback() {
        return Err(ServeError::NeedsToken { addr });
    }
    Ok(())
}

/// Checks the address against the token rule and binds it.
pub fn bind(addr: SocketAddr, token: Option<&str>) -> Result<TcpListener, ServeError> {
    check_listen(addr, token)?;
    TcpListener::bind(addr).map_err(|error| ServeError::Bind { addr, error })
}

/// Serves the dashboard on `listener` until Ctrl-C; prints its address on stderr.
pub fn serve(state: AppState, listener: TcpListener) -> Result<(), ServeError> {
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let guarded = if state.inner.token.is_some() {
            " (requests must carry the token: Authorization: Bearer TOKEN, or ?token=TOKEN once)"
        } else {
            ""
        };
        eprintln!(
            "wirelint: dashboard of {} at http://{local}/{guarded}; Ctrl-C stops it",
            state.db().display()
        );
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })?;
    Ok(())
}
