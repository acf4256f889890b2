//! Binding and running the dashboard server. Loopback needs nothing; any other address
//! needs a token, which every request must then carry.

use std::future::{Future, IntoFuture};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::Duration;

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
        // The command line adds which option picks another port.
        std::io::ErrorKind::AddrInUse => "the address is in use (another server runs there)".into(),
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

/// Serves the dashboard on `listener` until Ctrl-C (SIGINT) or SIGTERM, the signal service
/// managers and `docker stop` send; prints its address on stderr.
pub fn serve(state: AppState, listener: TcpListener) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    let guarded = if state.inner.token.is_some() {
        " (requests must carry the token: Authorization: Bearer TOKEN, or ?token=TOKEN once)"
    } else {
        ""
    };
    eprintln!(
        "wirelint: dashboard of {} at http://{local}/{guarded}; Ctrl-C stops it",
        state.db().display()
    );
    serve_until(state, listener, stop_signal())
}

/// Completes on the first SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// How long open requests get once shutdown is asked for: event streams never end by
/// themselves, so the server stops waiting for them after this.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Serves the dashboard on `listener` until `shutdown` completes, then gives open requests
/// [`SHUTDOWN_GRACE`] to finish.
pub fn serve_until(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    listener.set_nonblocking(true)?;
    let state = state.with_listen(listener.local_addr().ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        // Two waiters on one shutdown: the graceful stop and the deadline after it.
        let (asked, mut graceful) = tokio::sync::watch::channel(false);
        let mut hard = graceful.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = asked.send(true);
        });
        let server = axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                let _ = graceful.wait_for(|asked| *asked).await;
            })
            .into_future();
        let deadline = async move {
            let _ = hard.wait_for(|asked| *asked).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            r = server => r,
            () = deadline => Ok(()),
        }
    });
    // Requests still reading the database must not keep the process alive.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    served?;
    Ok(())
}
