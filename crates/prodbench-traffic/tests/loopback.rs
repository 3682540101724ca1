//! The generator against real sockets on 127.0.0.1: a small HTTP/1.1 server here records
//! every request it reads and answers as each test tells it (at once, after a stall, never,
//! or by closing the connection). Every window is at most a few seconds, every server lives
//! only as long as its test, and each test states the wall time it allows.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prodbench_traffic::{Arrival, Generator, Plan, RequestSpec, StopHandle, Target, TrafficRecord, Window, WindowSummary};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the server saw of one request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    path: String,
    host: String,
    body: String,
    /// From the first request the server read.
    at: Duration,
}

/// How the server answers a request.
#[derive(Clone, Copy)]
enum Reply {
    Ok,
    After(Duration),
    Never,
    Close,
}

type Behaviour = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    accept: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Server {
    async fn start(behaviour: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, behaviour, first) = (seen.clone(), Arc::new(behaviour) as Behaviour, Arc::new(OnceLock::new()));
        // Ends when the server is dropped; its connections end with the test's runtime.
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(connection(stream, log.clone(), behaviour.clone(), first.clone()));
            }
        });
        Server { addr, seen, accept }
    }

    fn seen(&self) -> Vec<Seen> {
        let mut seen = self.seen.lock().unwrap().clone();
        seen.sort_by_key(|s| s.at);
        seen
    }
}

/// Serves one keep-alive connection until the client closes it (or a reply closes it).
async fn connection(stream: TcpStream, log: Arc<Mutex<Vec<Seen>>>, behaviour: Behaviour, first: Arc<OnceLock<Instant>>) {
    let mut stream = BufReader::new(stream);
    while let Some(seen) = read_request(&mut stream, &first).await {
        let reply = behaviour(&seen);
        log.lock().unwrap().push(seen);
        match reply {
            Reply::Ok => {}
            Reply::After(stall) => tokio::time::sleep(stall).await,
            Reply::Never => tokio::time::sleep(Duration::from_secs(60)).await,
            Reply::Close => return,
        }
        if stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.is_err() {
            return;
        }
    }
}

async fn read_request(stream: &mut BufReader<TcpStream>, first: &OnceLock<Instant>) -> Option<Seen> {
    let mut line = String::new();
    stream.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
    let at = first.get_or_init(Instant::now).elapsed();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut host, mut length) = (String::new(), 0);
    loop {
        let mut header = String::new();
        stream.read_line(&mut header).await.ok().filter(|n| *n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "host" => host = value.trim().to_string(),
            "content-length" => length = value.trim().parse().ok()?,
            _ => {}
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Seen { method, path, host, body: String::from_utf8(body).ok()?, at })
}

fn get(path: &str, timeout: Duration) -> RequestSpec {
    RequestSpec { weight: 1, method: "GET".into(), path: path.into(), headers: Vec::new(), body: None, timeout }
}

fn plan(addr: SocketAddr, arrival: Arrival, duration: Duration, mix: Vec<RequestSpec>) -> Plan {
    Plan {
        target: Target { addr, host: "shop.internal".into() },
        seed: 7,
        arrival,
        mix,
        windows: vec![Window { name: "agent".into(), duration, arrival: None, mix: None }],
        max_connections: 64,
        max_requests: 10_000,
    }
}

fn constant(rate_per_sec: f64) -> Arrival {
    Arrival::Constant { rate_per_sec }
}

async fn run(plan: &Plan) -> TrafficRecord {
    Generator::new(plan).unwrap().run(&StopHandle::new()).await
}

fn only_window(record: &TrafficRecord) -> &WindowSummary {
    assert_eq!(record.summary.len(), 1, "{record:?}");
    &record.summary[0]
}

/// `sent = completed + timeouts + connection_errors + unfinished`, in the window and in
/// every second, and the seconds add up to the window.
fn assert_accounts_balance(record: &TrafficRecord) {
    for counts in record.summary.iter().map(|s| s.counts).chain(record.timeline.iter().map(|row| row.counts)) {
        assert_eq!(counts.sent, counts.finished() + counts.unfinished, "{counts:?}");
        let statuses = counts.status_2xx + counts.status_3xx + counts.status_4xx + counts.status_5xx + counts.status_other;
        assert_eq!(counts.completed, statuses, "{counts:?}");
    }
    for window in &record.summary {
        let sent: u64 = record.timeline.iter().filter(|row| row.window == window.window).map(|row| row.counts.sent).sum();
        assert_eq!(sent, window.counts.sent, "{}", window.window);
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_requests_and_another_seed_others() {
    let timeout = Duration::from_secs(2);
    let mix = vec![
        RequestSpec { weight: 2, ..get("/items/{int:1-1000000}", timeout) },
        RequestSpec {
            method: "POST".into(),
            body: Some("{\"qty\":1}".into()),
            headers: vec![("content-type".into(), "application/json".into())],
            ..get("/orders/{hex:8}", timeout)
        },
        RequestSpec { method: "DELETE".into(), ..get("/cart/{choice:a|b|c}", timeout) },
    ];
    let sequence = |seed: u64| {
        let mix = mix.clone();
        async move {
            let server = Server::start(|_| Reply::Ok).await;
            let mut plan = plan(server.addr, constant(40.0), Duration::from_secs(1), mix);
            plan.seed = seed;
            let record = run(&plan).await;
            assert_eq!(only_window(&record).counts.status_2xx, 40);
            server.seen()
        }
    };
    let (first, again, other) = tokio::join!(sequence(7), sequence(7), sequence(8));
    let requests = |seen: &[Seen]| seen.iter().map(|s| (s.method.clone(), s.path.clone(), s.body.clone())).collect::<Vec<_>>();
    assert_eq!(first.len(), 40);
    assert_eq!(requests(&first), requests(&again));
    assert_ne!(requests(&first), requests(&other));
    assert!(first.iter().all(|s| s.host == "shop.internal"));
    let methods: std::collections::BTreeSet<&str> = first.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["DELETE", "GET", "POST"].into());
    assert!(first.iter().filter(|s| s.method == "POST").all(|s| s.body == "{\"qty\":1}" && s.path.len() == "/orders/".len() + 8));
}

#[tokio::test]
async fn a_constant_rate_sends_rate_times_duration_on_schedule() {
    let (rate, secs) = (100.0, 2.0);
    let server = Server::start(|_| Reply::Ok).await;
    let plan = plan(server.addr, constant(rate), Duration::from_secs_f64(secs), vec![get("/ping", Duration::from_secs(1))]);
    let started = Instant::now();
    let record = run(&plan).await;
    let elapsed = started.elapsed();

    let seen = server.seen();
    assert_eq!(seen.len(), 200);
    let window = only_window(&record);
    assert_eq!((window.counts.sent, window.counts.status_2xx), (200, 200));
    assert_eq!(record.timeline.iter().map(|row| row.counts.sent).collect::<Vec<_>>(), [100, 100]);
    assert_accounts_balance(&record);
    // The run lasts the window, plus the last response.
    assert!(elapsed >= Duration::from_secs_f64(1.98) && elapsed < Duration::from_secs_f64(2.6), "{elapsed:?}");
    // On schedule: request i reaches the server i/rate after request 0. A shared, busy host
    // delays some; most must be within 20 ms and none by more than 250 ms.
    let lateness: Vec<f64> = seen.iter().enumerate().map(|(i, s)| (s.at.as_secs_f64() - i as f64 / rate).abs()).collect();
    let on_time = lateness.iter().filter(|late| **late < 0.020).count();
    assert!(on_time >= 180, "{on_time} of 200 within 20 ms: {lateness:?}");
    assert!(lateness.iter().all(|late| *late < 0.250), "{lateness:?}");
}

#[tokio::test]
async fn a_poisson_rate_sends_a_count_within_its_variance() {
    let (rate, secs) = (100.0, 2.0);
    let server = Server::start(|_| Reply::Ok).await;
    let plan = plan(server.addr, Arrival::Poisson { rate_per_sec: rate }, Duration::from_secs_f64(secs), vec![get("/ping", Duration::from_secs(1))]);
    let record = run(&plan).await;
    // A Poisson count has mean = variance = λ = rate · duration = 200; sd = sqrt(200) = 14.1.
    // Within 5 sd: [129.3, 270.7].
    let lambda: f64 = rate * secs;
    let sent = only_window(&record).counts.sent;
    assert!((sent as f64 - lambda).abs() < 5.0 * lambda.sqrt(), "{sent}");
    // A constant process would send exactly λ; the seeded schedule does not.
    assert_ne!(sent, 200);
    assert_eq!(server.seen().len() as u64, sent);
    assert_eq!(only_window(&record).counts.status_2xx, sent);
    assert_accounts_balance(&record);
}

/// Every request that reaches the server during its second second stalls 300 ms.
fn stall_in_second_1(seen: &Seen) -> Reply {
    if (1.0..2.0).contains(&seen.at.as_secs_f64()) { Reply::After(Duration::from_millis(300)) } else { Reply::Ok }
}

#[tokio::test]
async fn a_stalled_server_shows_as_latency_not_as_missing_requests() {
    let server = Server::start(stall_in_second_1).await;
    let plan = plan(server.addr, constant(100.0), Duration::from_secs(3), vec![get("/ping", Duration::from_secs(5))]);
    let record = run(&plan).await;

    // Open loop: the scheduled number was sent and served, stall or not.
    let window = only_window(&record);
    assert_eq!((window.counts.sent, window.counts.status_2xx), (300, 300));
    assert_eq!(server.seen().len(), 300);
    assert_accounts_balance(&record);
    // A third of the requests stalled: the window's p99 shows it (HdrHistogram reports the
    // top of a value's bucket, so a 300 ms value is never reported below 300 ms).
    assert!(window.latency.p99_ms.unwrap() >= 300.0, "{:?}", window.latency);
    // And it is in the second it hit: every request due in second 1 took at least 300 ms.
    let second_1 = &record.timeline[1];
    assert!(second_1.latency.p50_ms.unwrap() >= 300.0, "{second_1:?}");
    assert!(record.timeline[0].latency.p99_ms.unwrap() < 300.0, "{:?}", record.timeline[0]);
}

#[tokio::test]
async fn busy_connections_queue_requests_and_the_wait_is_latency() {
    let server = Server::start(stall_in_second_1).await;
    let opened = Arc::new(AtomicUsize::new(0));
    let mut plan = plan(server.addr, constant(100.0), Duration::from_secs(3), vec![get("/ping", Duration::from_secs(5))]);
    plan.max_connections = 8;
    let counter = opened.clone();
    let connector = move |addr: SocketAddr| {
        counter.fetch_add(1, Ordering::SeqCst);
        TcpStream::connect(addr)
    };
    let record = Generator::with_connector(&plan, connector).unwrap().run(&StopHandle::new()).await;

    let window = only_window(&record);
    assert_eq!((window.counts.sent, window.counts.status_2xx), (300, 300));
    assert_eq!(server.seen().len(), 300);
    assert!(opened.load(Ordering::SeqCst) <= 8, "{} connections", opened.load(Ordering::SeqCst));
    // 8 connections carry 8 / 0.3 s ≈ 27 requests/s while stalled, so requests due in second
    // 1 wait their turn; the ones behind three rounds of stalls wait about 0.9 s, and that
    // wait counts. A closed-loop generator would instead have sent ~27 and reported 300 ms.
    let second_1 = &record.timeline[1];
    assert!(second_1.latency.p99_ms.unwrap() >= 600.0, "{second_1:?}");
    assert_accounts_balance(&record);
}

#[tokio::test]
async fn timeouts_are_counted_and_the_run_ends_by_its_deadline() {
    let server = Server::start(|_| Reply::Never).await;
    let timeout = Duration::from_millis(200);
    let plan = plan(server.addr, constant(20.0), Duration::from_secs(1), vec![get("/slow", timeout)]);
    let started = Instant::now();
    let record = run(&plan).await;
    let elapsed = started.elapsed();

    let window = only_window(&record);
    assert_eq!((window.counts.sent, window.counts.timeouts, window.counts.completed), (20, 20, 0));
    assert_eq!(window.error_rate, Some(1.0));
    // Timed out requests are timed, at their timeout.
    assert!(window.latency.p50_ms.unwrap() >= 200.0, "{:?}", window.latency);
    assert_accounts_balance(&record);
    // Window (1 s) + timeout (0.2 s); the deadline's grace (0.25 s) is not needed.
    assert!(elapsed >= Duration::from_millis(1150) && elapsed < Duration::from_millis(1450), "{elapsed:?}");
}

#[tokio::test]
async fn connection_errors_are_counted_whether_refused_or_closed() {
    let refused = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let closing = Server::start(|_| Reply::Close).await;
    let timeout = Duration::from_secs(1);
    let window = Duration::from_millis(500);
    let (to_refused, to_closing) =
        (plan(refused, constant(20.0), window, vec![get("/", timeout)]), plan(closing.addr, constant(20.0), window, vec![get("/", timeout)]));
    let (refused, closed) = tokio::join!(run(&to_refused), run(&to_closing));
    for record in [&refused, &closed] {
        let window = only_window(record);
        assert_eq!((window.counts.sent, window.counts.connection_errors, window.counts.completed), (10, 10, 0), "{window:?}");
        assert_eq!(window.error_rate, Some(1.0));
        // Connection errors are not timed.
        assert_eq!(window.latency.p99_ms, None);
        assert_accounts_balance(record);
    }
    assert!(only_window(&refused).first_error.as_deref().unwrap().starts_with("connect to 127.0.0.1:"), "{refused:?}");
    assert!(only_window(&closed).first_error.is_some());
    assert_eq!(closing.seen().len(), 10);
}

#[tokio::test]
async fn the_stop_handle_ends_a_long_run_promptly() {
    let server = Server::start(|_| Reply::Never).await;
    let plan = plan(server.addr, constant(20.0), Duration::from_secs(60), vec![get("/", Duration::from_secs(10))]);
    let generator = Arc::new(Generator::new(&plan).unwrap());
    let stop = StopHandle::new();
    let started = Instant::now();
    // As the trial will: the run in a task of its own, stopped from outside.
    let running = tokio::spawn({
        let (generator, stop) = (generator.clone(), stop.clone());
        async move { generator.run(&stop).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.stop();
    let record = running.await.unwrap();
    let elapsed = started.elapsed();

    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
    let window = only_window(&record);
    assert!(window.stopped);
    // 20/s for 0.5 s: about 10 sent, none answered, all abandoned.
    assert!((8..=12).contains(&window.counts.sent), "{window:?}");
    assert_eq!(window.counts.unfinished, window.counts.sent);
    assert_eq!(record.timeline.len(), 1);
    assert_accounts_balance(&record);
    // A stopped handle stops whatever it is handed to next.
    assert!(generator.run(&stop).await.summary.is_empty());
}

#[tokio::test]
async fn windows_run_in_order_each_with_its_own_rate_and_mix() {
    let server = Server::start(|_| Reply::Ok).await;
    let timeout = Duration::from_secs(1);
    let mut plan = plan(server.addr, constant(20.0), Duration::from_millis(500), vec![get("/browse/{int:1-9}", timeout)]);
    plan.windows.insert(0, Window { name: "warmup".into(), duration: Duration::from_millis(500), arrival: None, mix: None });
    plan.windows.push(Window {
        name: "grading".into(),
        duration: Duration::from_millis(500),
        arrival: Some(constant(40.0)),
        mix: Some(vec![get("/checkout", timeout)]),
    });
    let record = run(&plan).await;

    let names: Vec<&str> = record.summary.iter().map(|s| s.window.as_str()).collect();
    assert_eq!(names, ["warmup", "agent", "grading"]);
    assert_eq!(record.summary.iter().map(|s| s.counts.sent).collect::<Vec<_>>(), [10, 10, 20]);
    let seen = server.seen();
    assert!(seen[..20].iter().all(|s| s.path.starts_with("/browse/")) && seen[20..].iter().all(|s| s.path == "/checkout"), "{seen:?}");
    assert!(record.summary.windows(2).all(|pair| pair[0].started_at_unix_ms < pair[1].started_at_unix_ms));
    assert_accounts_balance(&record);

    // The files a task's tests read.
    let dir = tempfile::tempdir().unwrap();
    record.write_to(dir.path()).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join(prodbench_traffic::SUMMARY_FILE)).unwrap()).unwrap();
    assert_eq!(summary["grading"]["status_2xx"], 20);
    assert_eq!(summary["grading"]["error_rate"], 0.0);
    assert!(summary["grading"]["p99_ms"].as_f64().unwrap() < 1000.0);

    // And one window alone, by name.
    let generator = Generator::new(&plan).unwrap();
    let grading = generator.run_window("grading", &StopHandle::new()).await.unwrap();
    assert_eq!(only_window(&grading).counts.sent, 20);
    assert!(generator.run_window("nope", &StopHandle::new()).await.is_err());
}
