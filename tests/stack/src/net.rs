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

/// One request over plain HTTP/1.1 (`Connection: close`) to `addr`: `(status, body)`, `None` if it
/// could not be made. For readiness checks and tools that must not pull in an HTTP stack.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str, timeout: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    let _ = s.set_read_timeout(Some(timeout));
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let (head, raw_body) = text.split_once("\r\n\r\n")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(raw_body) } else { raw_body.to_owned() };
    Some((status, body))
}

/// Decode a `Transfer-Encoding: chunked` body.
pub fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size_line, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").unwrap_or(&after[size..]);
    }
    out
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

    #[test]
    fn dechunks() {
        assert_eq!(super::dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world");
        assert_eq!(super::dechunk("0\r\n\r\n"), "");
    }
}
