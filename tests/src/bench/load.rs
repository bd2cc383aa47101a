//! A fast HTTP/1.1 load loop: many keep-alive connections, each sending one request at a time,
//! written straight on tokio sockets.
//!
//! Why its own reader, when every other test reads answers with a client crate (hyper's, or ureq's
//! in `seckill_stack::net::Client`): on a 2-core machine the load generator competes with Envoy for
//! CPU, so the cheaper it is per request, the more of the machine the thing measured gets, and a
//! benchmark must measure Envoy, not its client. Measured when the tests moved to client crates
//! (issue 14): hyper's client cost 16–21 µs per request, this reader 11–16 µs; measured again as the
//! client thread's CPU time per request (32 keep-alive connections to the bench Envoy's plain
//! listener, 4 rounds of 3 s): hyper's `http1` client 12.3–12.9 µs, this reader 9.8–10.4 µs. So
//! requests are ready-made bytes (built by the caller, e.g. with pre-minted tickets), responses are
//! parsed only as far as the status line and `content-length` / `chunked` (`parse_head`), and only
//! statuses are counted.
//! Used by the memory-bound test (`tests/tests/edge.rs`) and `seckill-bench edge`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Makes request `n` (0, 1, 2, ... across all connections); `None` ends the run.
pub type Source = Arc<dyn Fn(u64) -> Option<Bytes> + Send + Sync>;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests answered.
    pub answered: u64,
    pub elapsed: Duration,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Connections that failed (connect, write, read or an unparsable answer); each is re-opened.
    pub errors: u64,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn status(&self, s: u16) -> u64 {
        self.statuses.get(&s).copied().unwrap_or(0)
    }
}

/// Why a response could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed before a full answer")]
    Closed,
    #[error("unparsable answer: {0}")]
    Parse(&'static str),
}

/// A plain `POST path` with `content-length: 0` and the given headers, as raw HTTP/1.1 bytes.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)]) -> Bytes {
    let mut s = format!("{method} {path} HTTP/1.1\r\nhost: edge\r\ncontent-length: 0\r\n");
    for (k, v) in headers {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    Bytes::from(s)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Status, body length (`None` = chunked) and whether the server closes after this answer.
fn parse_head(head: &[u8]) -> Result<(u16, Option<usize>, bool), LoadError> {
    let text = std::str::from_utf8(head).map_err(|_| LoadError::Parse("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).ok_or(LoadError::Parse("status line"))?;
    let (mut len, mut chunked, mut close) = (Some(0), false, false);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            len = Some(v.parse().map_err(|_| LoadError::Parse("content-length"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    Ok((status, if chunked { None } else { len }, close))
}

/// One connection's reader state: bytes read but not consumed yet.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, LoadError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    async fn fill(&mut self) -> Result<(), LoadError> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(LoadError::Closed);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Send one request and read its answer: (status, server closes).
    async fn exchange(&mut self, req: &[u8]) -> Result<(u16, bool), LoadError> {
        self.stream.write_all(req).await?;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let (status, len, close) = parse_head(&self.buf[..head_end])?;
        self.buf.drain(..head_end);
        match len {
            Some(len) => {
                while self.buf.len() < len {
                    self.fill().await?;
                }
                self.buf.drain(..len);
            }
            None => loop {
                // chunked: size line, data, CRLF ... until the 0-size chunk and its trailer CRLF
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    self.fill().await?;
                };
                let size_text = std::str::from_utf8(&self.buf[..line_end]).map_err(|_| LoadError::Parse("chunk size"))?;
                let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(|_| LoadError::Parse("chunk size"))?;
                let need = line_end + 2 + size + 2;
                while self.buf.len() < need {
                    self.fill().await?;
                }
                self.buf.drain(..need);
                if size == 0 {
                    break;
                }
            },
        }
        Ok((status, close))
    }
}

/// Run `connections` connections against `addr` until `source` runs dry or `limit` passes.
pub async fn run(addr: SocketAddr, connections: usize, limit: Duration, source: Source) -> LoadReport {
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (next, stop, source) = (next.clone(), stop.clone(), source.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            let (mut answered, mut errors) = (0u64, 0u64);
            let mut conn: Option<Conn> = None;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = source(n) else {
                    stop.store(true, Ordering::Relaxed);
                    break;
                };
                // A request whose connection fails is retried once on a fresh connection.
                for _attempt in 0..2 {
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => match Conn::open(addr).await {
                            Ok(c) => conn.insert(c),
                            Err(_) => {
                                errors += 1;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        },
                    };
                    match c.exchange(&req).await {
                        Ok((status, close)) => {
                            answered += 1;
                            *statuses.entry(status).or_default() += 1;
                            if close {
                                conn = None;
                            }
                            break;
                        }
                        Err(_) => {
                            errors += 1;
                            conn = None;
                        }
                    }
                }
            }
            (answered, errors, statuses)
        }));
    }
    let mut report = LoadReport::default();
    for t in tasks {
        if let Ok((answered, errors, statuses)) = t.await {
            report.answered += answered;
            report.errors += errors;
            for (s, n) in statuses {
                *report.statuses.entry(s).or_default() += n;
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let (s, len, close) = parse_head(b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 12\r\nretry-after: 1\r\n\r\n").unwrap();
        assert_eq!((s, len, close), (429, Some(12), false));
        let (s, len, close) = parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n").unwrap();
        assert_eq!((s, len, close), (200, None, true));
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn request_shape() {
        let r = request_bytes("POST", "/api/x", &[("authorization", "Bearer t")]);
        assert_eq!(&r[..], &b"POST /api/x HTTP/1.1\r\nhost: edge\r\ncontent-length: 0\r\nauthorization: Bearer t\r\n\r\n"[..]);
    }
}
