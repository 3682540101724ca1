//! `GET /metrics`: a generator's [`Progress`] in Prometheus text exposition format, for a
//! metrics store (or an agent with `curl`) to scrape while the trial runs.
//!
//! The trial opens the listener inside the sandbox's network namespace (see
//! [`crate::Netns::listen`]) on [`METRICS_PORT`], so everything in the sandbox reaches it on
//! its loopback, and serves it from this process: what it says comes from the generator, and
//! nothing in the sandbox can change it. It answers only `GET /metrics` (and `HEAD`), with
//! the same families as the trial's `metrics.prom`; every other path is a 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::sleep;

use crate::progress::Progress;

/// The port the trial serves `/metrics` on, inside the sandbox (OpenTelemetry's Prometheus
/// exporter's default); the task format reserves it.
pub use prodbench_task::live::METRICS_PORT;
/// The path it answers on.
pub const METRICS_PATH: &str = "/metrics";
/// Prometheus text exposition, version 0.0.4.
const CONTENT_TYPE_PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// A scraper that sends nothing is dropped after this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A running endpoint. Dropping it aborts its tasks; [`MetricsEndpoint::stop`] also waits
/// for them.
pub struct MetricsEndpoint {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl MetricsEndpoint {
    /// Serves `progress` on `listener` (on the current tokio runtime) until stopped.
    pub fn start(listener: TcpListener, progress: Progress) -> MetricsEndpoint {
        let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, progress, stopped));
        MetricsEndpoint { addr, stop, accept }
    }

    /// Where scrapers connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and waits until the endpoint's tasks end.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        (&mut self.accept).await.ok();
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, progress: Progress, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = until_stopped(&mut stopped) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let progress = progress.clone();
                    let service = service_fn(move |request| std::future::ready(Ok::<_, Infallible>(answer(&request, &progress))));
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
                    connections.spawn(async move { builder.serve_connection(TokioIo::new(stream), service).await.ok(); });
                }
                // Out of file descriptors, say: wait rather than spin.
                Err(_) => sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    // The sender lives in the endpoint, and a dropped endpoint aborts this task first.
    stopped.wait_for(|stop| *stop).await.ok();
}

fn answer(request: &Request<Incoming>, progress: &Progress) -> Response<Full<Bytes>> {
    let status = |status: StatusCode| Response::builder().status(status).body(Full::default()).expect("a status-only response is valid");
    if request.uri().path() != METRICS_PATH {
        return status(StatusCode::NOT_FOUND);
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let text = crate::prometheus(&progress.snapshot());
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PROMETHEUS));
    response
}
