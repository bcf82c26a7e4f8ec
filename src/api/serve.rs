//! The HTTP connection loop. `axum::serve` sets no limits on connections, so a flood of idle
//! or slow clients (slowloris) could hold the service; this loop serves the same router with
//! hyper directly and bounds what one client can take:
//! - at most `max_connections` served at once; extra ones get a short 503 and are closed;
//! - with HTTPS, a connection takes its slot *before* its TLS handshake, and must finish the
//!   handshake within `header_read_timeout`, so half-open handshakes cannot pile up unbounded;
//! - a client must send its request head within `header_read_timeout` (also ends idle
//!   keep-alive connections);
//! - the request head is read into a bounded buffer (bigger heads get hyper's bare 431;
//!   [`crate::api`] names the URL and header limits for heads that fit).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Per-connection limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once (server.max-connections).
    pub max_connections: usize,
    /// Time allowed to send a request head (server.header-read-timeout).
    pub header_read_timeout: Duration,
    /// Largest request head read before hyper answers 431 on its own; set well above the
    /// named limits so that those answer with a message first.
    pub max_head_bytes: usize,
}

/// Refusals written at once; beyond this, extra connections are dropped without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// How long an over-the-limit HTTPS client gets to finish its handshake to read the 503.
const REFUSAL_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown` resolves, then stops
/// accepting and waits for open connections to finish their requests (the caller bounds that
/// wait).
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    refused: prometheus::IntCounter,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    L: Listener,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes.max(16 * 1024));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(router);
    tokio::pin!(shutdown);
    loop {
        let (io, _addr) = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        // The slot is taken before anything else, the TLS handshake included.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused.inc();
            if let Ok(slot) = refusals.clone().try_acquire_owned() {
                let (tls, max) = (tls.clone(), limits.max_connections);
                tokio::spawn(async move {
                    match tls {
                        None => refuse(io, max).await,
                        Some(acceptor) => {
                            let handshake = acceptor.accept(io);
                            if let Ok(Ok(stream)) =
                                tokio::time::timeout(REFUSAL_HANDSHAKE_TIMEOUT, handshake).await
                            {
                                refuse(stream, max).await;
                            }
                        }
                    }
                    drop(slot);
                });
            }
            continue;
        };
        match &tls {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(io), service.clone()));
                tokio::spawn(async move {
                    // Errors here are the client's (reset, timeout, malformed head); hyper has
                    // already answered what could be answered.
                    let _ = conn.await;
                    drop(permit);
                });
            }
            Some(acceptor) => {
                let (acceptor, http, service) = (acceptor.clone(), http.clone(), service.clone());
                let (watcher, handshake_timeout) = (graceful.watcher(), limits.header_read_timeout);
                tokio::spawn(async move {
                    // A client that does not finish its handshake in time loses its slot.
                    let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(io));
                    if let Ok(Ok(stream)) = handshake.await {
                        let conn =
                            watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                        let _ = conn.await;
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers a connection over the limit with 503 and closes it, without reading the request
/// beyond what is needed for the client to see the answer instead of a reset.
async fn refuse<S>(mut io: S, max_connections: usize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let body = format!(
        "too many connections: server.max-connections={max_connections} are open; retry shortly, or raise server.max-connections\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        io.write_all(answer.as_bytes()).await?;
        io.shutdown().await?;
        // Read what the client sent so closing does not reset the connection under the answer.
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            let n = io.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        std::io::Result::Ok(())
    })
    .await;
}
