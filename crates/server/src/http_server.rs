//! The HTTP listener: accepts connections and serves the API on each, with
//! the bounds a server facing the internet needs (`http.*`):
//!
//! - at most `max_connections` open at once; a connection beyond it is
//!   answered `503` with `Retry-After` and closed at once, so a flood of
//!   connections costs the server a fixed amount of memory and clients get
//!   an answer instead of a hang;
//! - a connection must send a request's headers within
//!   `header_read_timeout` of the server starting to wait for them, on a new
//!   connection and after each answer on a kept-alive one: a client sending
//!   headers a byte at a time, or keeping a connection open and idle, is
//!   closed;
//! - graceful shutdown: on the stop signal no connection is accepted any
//!   more, kept-alive connections are closed after their request in
//!   progress, and the caller bounds how long that may take.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The bounds on connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` completes, then waits for the open
/// connections to finish their requests in progress.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: pass, and try again.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics::counter!("switchboard_http_refused_total", "reason" => "connections")
                .increment(1);
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A connection that ends in error (the client went away, its
            // headers came too slowly) has nothing left to answer.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection beyond the limit (the contract's error body, with a
/// request id of its own) once its request's head has come, and closes it;
/// all within a second.
async fn refuse(mut stream: TcpStream) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::to_string(&switchboard_protocol::ErrorBody {
        error_type: switchboard_protocol::ErrorType::InternalServer,
        message: "the server has as many connections open as it takes; retry in a second".into(),
        request_id: request_id.clone(),
    })
    .unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         x-request-id: {request_id}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        // The request's head first (what fits in a few kilobytes): a client
        // answered before it has sent its request takes the answer for a
        // broken connection, not for a refusal.
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        while head.len() < 8 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => head.extend_from_slice(&chunk[..read]),
            }
        }
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
