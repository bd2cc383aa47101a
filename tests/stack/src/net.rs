//! Loopback ports: pick a free one, wait until one answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Ports handed out by [`free_port`]: below Linux's ephemeral range (32768–60999), so the
/// outgoing connections of a crowd can never take a port between our check and the server's bind.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// A port on 127.0.0.1 that is free now, not in the ephemeral range, and not handed out before by
/// this process. (Port 0 would pick from the ephemeral range, which a test's own client
/// connections race for.)
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    // Start each process at its own offset so concurrent test processes rarely collide.
    let _ = NEXT.compare_exchange(u32::MAX, (std::process::id().wrapping_mul(7919)) % span, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = PORT_RANGE.start + n as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// Wait until something accepts TCP connections on `addr`, or `timeout` passes.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// True when a Redis at `addr` answers `PING` with `+PONG` (not `-LOADING`, not silence).
pub fn ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// An HTTP answer as [`Client`] read it.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked, as text (invalid UTF-8 replaced).
    pub body: String,
}

impl Answer {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The blocking HTTP/1.1 client of the harness and the tests, on `ureq`: plain HTTP to loopback;
/// an answer of any status is an [`Answer`] (not an error), redirects are not followed, and nothing
/// is added to a request but `host` and its body's `content-length`. The answer is read by its
/// length (`content-length` or chunked), not to EOF: Envoy holds a `connection: close` connection
/// open for a while after answering (its delayed close).
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    close: bool,
}

impl Client {
    /// A fresh connection per request (`connection: close`), so a handful of requests spread over
    /// an Envoy's workers. `timeout` bounds each whole request.
    pub fn new(timeout: Duration) -> Client {
        Client { agent: Self::agent(timeout, 0), close: true }
    }

    /// Connections kept alive and reused, one request at a time on each.
    pub fn keep_alive(timeout: Duration) -> Client {
        Client { agent: Self::agent(timeout, 8), close: false }
    }

    fn agent(timeout: Duration, idle: usize) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(ureq::config::AutoHeaderValue::None)
            .accept(ureq::config::AutoHeaderValue::None)
            .max_idle_connections(idle)
            .max_idle_connections_per_host(idle)
            .build()
            .new_agent()
    }

    /// `method path` at `addr` with `headers` and `body` (sent with its `content-length`, also
    /// when empty). `Err` when the connection could not be made or the answer was unreadable.
    pub fn request(&self, addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> std::io::Result<Answer> {
        let mut req = ureq::http::Request::builder().method(method).uri(format!("http://{addr}{path}"));
        if self.close {
            req = req.header("connection", "close");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.header("content-length", body.len()).body(body).map_err(std::io::Error::other)?;
        let mut resp = self.agent.run(req).map_err(ureq::Error::into_io)?;
        let headers = resp.headers().iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
        let bytes = resp.body_mut().with_config().limit(u64::MAX).read_to_vec().map_err(ureq::Error::into_io)?;
        Ok(Answer { status: resp.status().as_u16(), headers, body: String::from_utf8_lossy(&bytes).into_owned() })
    }
}

/// One request on a fresh connection with [`Client`]: `(status, body)`, `None` if it could not be
/// made. For readiness checks and tools.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str, timeout: Duration) -> Option<(u16, String)> {
    Client::new(timeout).request(addr, method, path, headers, body).ok().map(|a| (a.status, a.body))
}

/// `GET path` with [`http_request`].
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)], timeout: Duration) -> Option<(u16, String)> {
    http_request(addr, "GET", path, headers, "", timeout)
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_distinct_and_outside_the_ephemeral_range() {
        let a: Vec<u16> = (0..50).map(|_| super::free_port()).collect();
        let set: std::collections::HashSet<&u16> = a.iter().collect();
        assert_eq!(set.len(), a.len());
        assert!(a.iter().all(|p| super::PORT_RANGE.contains(p)));
    }

    /// A server on a free port that answers each request head (a body is not read) with `answer`;
    /// returns its address and the heads it read, each prefixed with its connection's number.
    fn canned_server(answer: &'static str) -> (super::SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = super::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(conn) = conn else { return };
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    loop {
                        let mut head = String::new();
                        while !head.ends_with("\r\n\r\n") {
                            if r.read_line(&mut head).unwrap_or(0) == 0 {
                                return;
                            }
                        }
                        log.lock().unwrap().push(format!("conn {n}: {head}"));
                        if w.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    #[test]
    fn client_reads_a_chunked_answer_of_any_status_without_following_it() {
        let (addr, seen) = canned_server("HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nX-Two: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        let a = super::Client::new(super::Duration::from_secs(5)).request(addr, "POST", "/buy?x=1", &[("authorization", "Bearer t")], "{}").unwrap();
        assert_eq!((a.status, a.header("location"), a.header("x-two"), a.body.as_str()), (302, Some("/elsewhere"), Some("a"), "hello world"));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "no redirect followed: {seen:?}");
        let head = seen[0].to_ascii_lowercase();
        assert!(head.starts_with("conn 0: post /buy?x=1 http/1.1\r\n"), "{head}");
        assert!(head.contains("connection: close\r\n") && head.contains("authorization: bearer t\r\n") && head.contains("content-length: 2\r\n"), "{head}");
        assert!(!head.contains("user-agent") && !head.contains("accept"), "nothing added: {head}");
    }

    #[test]
    fn keep_alive_client_reuses_its_connection() {
        let (addr, seen) = canned_server("HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno");
        let client = super::Client::keep_alive(super::Duration::from_secs(5));
        for _ in 0..3 {
            let a = client.request(addr, "GET", "/", &[], "").unwrap();
            assert_eq!((a.status, a.body.as_str()), (404, "no"));
        }
        assert!(seen.lock().unwrap().iter().all(|h| h.starts_with("conn 0: GET / HTTP/1.1\r\n") && !h.contains("connection")), "{seen:?}");
        assert_eq!(super::http_get(addr, "/", &[], super::Duration::from_secs(5)), Some((404, "no".to_owned())));
    }
}
