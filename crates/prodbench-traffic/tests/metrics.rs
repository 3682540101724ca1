//! `GET /metrics` scraped while a generator runs against a loopback server: the running
//! window's counts grow between scrapes, and once the window ends the endpoint says what the
//! record says. (`netns.rs` serves it inside a namespace, as a trial does.)

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use prodbench_traffic::{Arrival, Generator, METRICS_PATH, MetricsEndpoint, Plan, RequestSpec, StopHandle, Target, Window, prometheus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server answering every request 200 at once.
async fn server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let ok = service_fn(|_: Request<hyper::body::Incoming>| async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), ok));
        }
    });
    addr
}

fn plan(addr: std::net::SocketAddr) -> Plan {
    Plan {
        target: Target { addr, host: "svc".into() },
        seed: 5,
        arrival: Arrival::Constant { rate_per_sec: 40.0 },
        mix: vec![RequestSpec { weight: 1, method: "GET".into(), path: "/".into(), headers: Vec::new(), body: None, timeout: Duration::from_secs(1) }],
        windows: vec![Window { name: "agent".into(), duration: Duration::from_secs(4), arrival: None, mix: None }],
        max_connections: 8,
        max_requests: 1_000,
    }
}

/// `method path` over a new connection: status line and body.
async fn request(stream: TcpStream, method: &str, path: &str) -> (String, String) {
    let mut stream = stream;
    stream.write_all(format!("{method} {path} HTTP/1.1\r\nhost: metrics\r\nconnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await.unwrap().unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// The value of the sample line that starts with `series ` in exposition `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

const SENT: &str = "prodbench_traffic_requests_total{window=\"agent\",outcome=\"sent\"}";
const COMPLETED: &str = "prodbench_traffic_requests_total{window=\"agent\",outcome=\"completed\"}";

#[tokio::test]
async fn a_scrape_during_a_window_sees_its_counts_grow_and_after_it_the_record() {
    let generator = Generator::new(&plan(server().await)).unwrap();
    let endpoint = MetricsEndpoint::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), generator.progress());
    let addr = endpoint.local_addr();

    // Before any window: a valid page with no samples.
    let (head, before) = request(TcpStream::connect(addr).await.unwrap(), "GET", METRICS_PATH).await;
    assert!(head.starts_with("HTTP/1.1 200") && head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    assert_eq!(sample(&before, SENT), None, "{before}");

    let scrapes = async {
        let mut seen = Vec::new();
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let (_, text) = request(TcpStream::connect(addr).await.unwrap(), "GET", METRICS_PATH).await;
            seen.push((sample(&text, SENT), sample(&text, COMPLETED)));
        }
        seen
    };
    let stop = StopHandle::new();
    let (record, seen) = tokio::join!(generator.run(&stop), scrapes);

    // 40 per second: about 40 by 1.5 s (published each second), about 100 by 3 s; never
    // the window's 160 while it runs.
    let sent: Vec<f64> = seen.iter().map(|(sent, _)| sent.expect("the running window is exposed")).collect();
    assert!(sent[0] >= 40.0 && sent[1] > sent[0] && sent[1] < 160.0, "{seen:?}");
    assert!(seen.iter().all(|(sent, completed)| completed.unwrap() <= sent.unwrap()), "{seen:?}");

    // After the window: exactly the record's exposition.
    let (_, after) = request(TcpStream::connect(addr).await.unwrap(), "GET", METRICS_PATH).await;
    assert_eq!(after, prometheus(&record));
    assert_eq!(sample(&after, SENT), Some(160.0));

    // Nothing but GET (and HEAD) /metrics.
    let (not_found, _) = request(TcpStream::connect(addr).await.unwrap(), "GET", "/").await;
    assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
    let (not_allowed, _) = request(TcpStream::connect(addr).await.unwrap(), "POST", METRICS_PATH).await;
    assert!(not_allowed.starts_with("HTTP/1.1 405") && not_allowed.to_ascii_lowercase().contains("allow: get, head"), "{not_allowed}");

    endpoint.stop().await;
    assert!(TcpStream::connect(addr).await.is_err(), "a stopped endpoint closes its port");
}
