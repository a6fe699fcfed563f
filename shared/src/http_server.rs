//! `splat serve`'s HTTP/1 server: hyper with a timer, so that no connection is held without doing its part.
//!
//! - A request's headers must arrive within the header timeout, counted from the connection's start or from
//!   the previous response (hyper's header-read timeout, which makes it the keep-alive idle timeout too): a
//!   client that sends half a request line and goes silent is closed.
//! - A request must be answered within the request timeout, body included, or it gets `408` and the
//!   connection is closed: a body trickled a byte a second is cut off.
//! - At most `max_connections` are open; past that the accept loop waits for one to close, and new
//!   connections wait in the kernel's listen backlog instead of exhausting file descriptors.
//! - On shutdown no connection is accepted, idle ones close at once, busy ones finish their request, for at
//!   most [`SHUTDOWN_GRACE`].
//!
//! The Lambda functions have none of this: API Gateway and function URLs own the connections there.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Bounds on what clients can make the server hold (this module's server, and ingest's body budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLimits {
    /// `SPLAT_INGEST_MEMORY_BYTES`, default 128 MiB: request bodies, raw and decompressed, held by ingest at
    /// once across all requests. Past it ingest answers 503 with `Retry-After`; a request that could never fit
    /// gets 413. A small machine's worth: a hundred envelopes of 1 MiB at once, or one of 40 MiB (an envelope
    /// holds two to three times its decompressed size while it is decoded and queued).
    pub ingest_memory_bytes: usize,
    /// `SPLAT_MAX_CONNECTIONS`, default 512 (`splat serve`): open connections; more wait in the listen backlog.
    /// Under the common 1,024 open-files limit with room for the database and lake files.
    pub max_connections: usize,
    /// `SPLAT_HEADER_TIMEOUT_SECS`, default 30 (`splat serve`): to send a request's headers, counted from the
    /// connection's start or the previous response, so it is also the keep-alive idle timeout.
    pub header_timeout: Duration,
    /// `SPLAT_REQUEST_TIMEOUT_SECS`, default 60 (`splat serve`): from a request's headers to its answer, body
    /// included (a body trickled a byte a second is cut off with 408).
    pub request_timeout: Duration,
}

/// How long shutdown waits for requests in progress.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes, then drains the open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &EdgeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        answer_within,
    ));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &open) => accepted,
        };
        let Some((stream, slot)) = accepted else {
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
}

/// Waits for a free connection slot, then for a connection.
async fn accept(
    listener: &TcpListener,
    open: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let slot = open.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, slot)),
        Err(e) => {
            // Out of file descriptors, say: accepting again at once would spin.
            tracing::error!(error = %e, "accepting a connection failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

/// The request timeout: past it the handler (and the body it is reading) is dropped and the client told so.
async fn answer_within(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "the request was not completed in time\n",
        )
            .into_response(),
    }
}
