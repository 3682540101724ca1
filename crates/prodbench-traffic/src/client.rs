//! The client side: HTTP/1.1 over a bounded pool of connections, each opened through a
//! [`Connector`].
//!
//! The connector is pluggable because where a socket is opened decides what it can reach:
//! plain `TcpStream::connect` reaches loopback and the trial's containers, while a local
//! sandbox's services are reachable only from inside its network namespace, so the live
//! environment passes a connector that opens the socket there. Everything above the socket
//! (the pool, HTTP, timeouts, measurement) is the same either way.
//!
//! The pool bounds open connections, not requests: a request that finds every connection
//! busy waits for one, and since its latency runs from its scheduled time, the wait is
//! measured rather than hidden. A timed-out request's connection is closed (its state is
//! unknown), as a real client's would be.

use std::error::Error;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

use crate::plan::Request;

/// A connection being opened, as a [`Connector`] returns it.
pub type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// Opens the generator's connections. Any `Fn(SocketAddr) -> impl Future<Output =
/// io::Result<TcpStream>>` is one; [`crate::Generator::new`] uses `TcpStream::connect`.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, addr: SocketAddr) -> Connecting;
}

impl<F, Fut> Connector for F
where
    F: Fn(SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<TcpStream>> + Send + 'static,
{
    fn connect(&self, addr: SocketAddr) -> Connecting {
        Box::pin(self(addr))
    }
}

/// An open connection; dropping it closes it.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

pub(crate) struct Pool {
    addr: SocketAddr,
    host: HeaderValue,
    connector: Box<dyn Connector>,
    /// One permit per connection in use; idle connections hold none.
    in_use: Semaphore,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    pub(crate) fn new(addr: SocketAddr, host: HeaderValue, connector: Box<dyn Connector>, max_connections: usize) -> Pool {
        Pool { addr, host, connector, in_use: Semaphore::new(max_connections), idle: Mutex::new(Vec::new()) }
    }

    /// Sends `request` with `path` and reads the whole response: its status, or why there is
    /// none. Cancelling the future (a timeout) closes the connection it was using.
    pub(crate) async fn exchange(&self, request: &Request, path: String) -> Result<StatusCode, String> {
        let message = self.message(request, path)?;
        let _permit = self.in_use.acquire().await.map_err(|e| e.to_string())?;
        let mut connection = self.ready_connection().await?;
        let response = connection.sender.send_request(message).await.map_err(|e| describe(&e))?;
        let status = response.status();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(|e| describe(&e))?;
        }
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(connection);
        Ok(status)
    }

    fn message(&self, request: &Request, path: String) -> Result<hyper::Request<Full<Bytes>>, String> {
        let mut message = hyper::Request::builder()
            .method(request.method.clone())
            .uri(path)
            .header(HOST, self.host.clone())
            .header(USER_AGENT, HeaderValue::from_static(concat!("prodbench-traffic/", env!("CARGO_PKG_VERSION"))))
            .body(Full::new(request.body.clone()))
            .map_err(|e| e.to_string())?;
        // The request's own headers replace the defaults (a task may set its own Host).
        message.headers_mut().extend(request.headers.clone());
        Ok(message)
    }

    /// An idle connection that is still open, or a new one.
    async fn ready_connection(&self) -> Result<Connection, String> {
        while let Some(mut connection) = self.take_idle() {
            if connection.sender.ready().await.is_ok() {
                return Ok(connection);
            }
        }
        self.open().await
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    async fn open(&self) -> Result<Connection, String> {
        let stream = self.connector.connect(self.addr).await.map_err(|e| format!("connect to {}: {e}", self.addr))?;
        // Small requests go out at once; a failure here only costs latency.
        stream.set_nodelay(true).ok();
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| describe(&e))?;
        let driver = tokio::spawn(async move { connection.await.ok() }).abort_handle();
        Ok(Connection { sender, driver })
    }
}

/// An error and its causes, outermost first: hyper's own message is often only "connection
/// error".
fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
