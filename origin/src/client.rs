//! A small HTTP/1.1 client over hyper, shared by `seckillctl`, the integration tests and the tools.
//!
//! Keeps connections alive and pools them; one [`HttpClient`] serves many concurrent requests.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad request: {0}")]
    Build(String),
    #[error("request to {url} failed: {source}")]
    Send { url: String, source: hyper_util::client::legacy::Error },
    #[error("reading the answer from {url} failed: {source}")]
    Read { url: String, source: hyper::Error },
    #[error("{url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
}

/// An answer: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json<T: for<'de> serde::Deserialize<'de>>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn json_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let inner = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector);
        HttpClient { inner, timeout }
    }

    /// Send one request. `headers` are (name, value) pairs; `body` may be empty.
    pub async fn send(&self, method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Result<Answer, ClientError> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| ClientError::Build(e.to_string()))?;
            let value = HeaderValue::from_str(v).map_err(|e| ClientError::Build(e.to_string()))?;
            req = req.header(name, value);
        }
        let body: Bytes = body.into();
        if !body.is_empty() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body)).map_err(|e| ClientError::Build(e.to_string()))?;
        let fut = async {
            let resp = self.inner.request(req).await.map_err(|source| ClientError::Send { url: url.to_owned(), source })?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|source| ClientError::Read { url: url.to_owned(), source })?.to_bytes();
            Ok(Answer { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| ClientError::Timeout { url: url.to_owned(), timeout: self.timeout })?
    }

    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Answer, ClientError> {
        self.send(Method::GET, url, headers, Bytes::new()).await
    }

    pub async fn put_json(&self, url: &str, headers: &[(&str, &str)], body: &serde_json::Value) -> Result<Answer, ClientError> {
        self.send(Method::PUT, url, headers, serde_json::to_vec(body).unwrap_or_default()).await
    }
}
