//! Raw HTTP/1.1 over TCP, for hostile inputs no well-behaved client library would send:
//! conflicting `Content-Length` / `Transfer-Encoding`, non-UTF-8 header bytes, slow clients.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Everything that came back on the connection.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub text: String,
    /// The connection was closed by the server (EOF), as opposed to the read timing out.
    pub closed: bool,
}

impl RawAnswer {
    /// Status of the first response, if any.
    pub fn status(&self) -> Option<u16> {
        self.text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }

    /// How many responses came back (a smuggled request would add one).
    pub fn responses(&self) -> usize {
        self.text.matches("HTTP/1.1 ").count()
    }

    /// The body of the first response.
    pub fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
    }
}

/// Send `bytes` in pieces (`chunks`, with `gap` between them) and read until the server closes or
/// `read_for` passes.
pub async fn send_slowly(addr: SocketAddr, chunks: &[&[u8]], gap: Duration, read_for: Duration) -> std::io::Result<RawAnswer> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        if s.write_all(c).await.is_err() {
            break; // the server already closed
        }
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + read_for;
    let mut closed = false;
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    Ok(RawAnswer { text: String::from_utf8_lossy(&out).into_owned(), closed })
}

/// Send `bytes` at once and read for up to `read_for`.
pub async fn send(addr: SocketAddr, bytes: &[u8], read_for: Duration) -> std::io::Result<RawAnswer> {
    send_slowly(addr, &[bytes], Duration::ZERO, read_for).await
}
