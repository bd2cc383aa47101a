//! `seckillctl watch SKU`: the SRE's live view of one sale, refreshed in place.
//!
//! It exists because `sale show` is a snapshot and Grafana is a browser away: during the minutes a
//! sale lasts the SRE wants stock left, sold, the rate of sale, what the edges decide per second
//! and what the origins answer, on one terminal screen, with a bar toward sold out.
//!
//! Sources: the origin's `GET /admin/sales/{sku}` (exact figures) and `GET /metrics` (buy outcomes),
//! and with `--prometheus URL` the recording rule `seckill:edge_decisions:rate1m` (edge decisions
//! per second, all edges). The first refresh must reach the origin (a wrong token, an unknown sku or
//! an unreachable origin end the command with one line and a non-zero exit); after that a failing
//! origin or Prometheus is reported on screen and the last known figures stay up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::client::{Answer, HttpClient};
use crate::store::SaleFigures;

/// Why `watch` could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("the origin refused the admin token (401): check --token or SECKILL_ADMIN_TOKEN")]
    Unauthorized,
    #[error("no sale `{0}` on the origin (404); `seckillctl sale list` shows the skus")]
    UnknownSku(String),
    #[error("cannot reach the origin at {origin}: {reason}")]
    Unreachable { origin: String, reason: String },
    #[error("the origin answered {status} to {what}: {body}")]
    Unexpected { what: String, status: u16, body: String },
}

/// What to watch and how.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub origin: String,
    pub token: String,
    pub sku: String,
    pub prometheus: Option<String>,
    pub interval: Duration,
    /// Stop after this many refreshes (`--once` is 1); `None`: until interrupted.
    pub count: Option<u64>,
}

/// One reading of the origin.
#[derive(Debug, Clone)]
struct Reading {
    at: Instant,
    figures: SaleFigures,
    /// Buy answers by outcome since the origin started (`seckill_origin_requests_total{route="buy"}`).
    outcomes: BTreeMap<String, u64>,
}

/// The view's state across refreshes.
#[derive(Default)]
struct View {
    first: Option<Reading>,
    previous: Option<Reading>,
    last: Option<Reading>,
    origin_down: Option<(String, String)>,
    edge: Option<BTreeMap<String, f64>>,
    prometheus_down: Option<(String, String)>,
}

fn clock() -> String {
    let s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

async fn get(client: &HttpClient, url: &str, auth: &str, origin: &str) -> Result<Answer, WatchError> {
    client.get(url, &[("authorization", auth)]).await.map_err(|e| WatchError::Unreachable { origin: origin.to_owned(), reason: e.to_string() })
}

/// `seckill_origin_requests_total{route="buy",outcome="X"} N` lines of the origin's metrics.
pub fn buy_outcomes(metrics: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("seckill_origin_requests_total{")) {
        let Some((labels, value)) = line.split_once("} ") else { continue };
        let label = |name: &str| labels.split(',').find_map(|kv| kv.trim_start_matches("seckill_origin_requests_total{").strip_prefix(&format!("{name}=\""))?.strip_suffix('"'));
        if label("route") == Some("buy") {
            if let (Some(outcome), Ok(n)) = (label("outcome"), value.trim().parse::<f64>()) {
                *out.entry(outcome.to_owned()).or_insert(0) += n as u64;
            }
        }
    }
    out
}

async fn read_origin(client: &HttpClient, o: &WatchOptions) -> Result<Reading, WatchError> {
    let base = o.origin.trim_end_matches('/');
    let auth = format!("Bearer {}", o.token);
    let a = get(client, &format!("{base}/admin/sales/{}", o.sku), &auth, base).await?;
    match a.status.as_u16() {
        200 => {}
        401 => return Err(WatchError::Unauthorized),
        404 => return Err(WatchError::UnknownSku(o.sku.clone())),
        s => return Err(WatchError::Unexpected { what: "the sale's figures".into(), status: s, body: a.text() }),
    }
    let figures: SaleFigures = a.json().map_err(|e| WatchError::Unexpected { what: "the sale's figures".into(), status: 200, body: e.to_string() })?;
    let m = get(client, &format!("{base}/metrics"), &auth, base).await?;
    if !m.status.is_success() {
        return Err(WatchError::Unexpected { what: "/metrics".into(), status: m.status.as_u16(), body: m.text() });
    }
    Ok(Reading { at: Instant::now(), figures, outcomes: buy_outcomes(&m.text()) })
}

/// Percent-encode a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Edge decisions per second by reason, from Prometheus' recording rule.
async fn read_edges(client: &HttpClient, prometheus: &str) -> Result<BTreeMap<String, f64>, String> {
    let url = format!("{}/api/v1/query?query={}", prometheus.trim_end_matches('/'), encode("seckill:edge_decisions:rate1m"));
    let a = client.get(&url, &[]).await.map_err(|e| e.to_string())?;
    if !a.status.is_success() {
        return Err(format!("answered {}", a.status));
    }
    let v = a.json_value();
    let result = v["data"]["result"].as_array().ok_or("not a Prometheus query answer")?;
    Ok(result
        .iter()
        .filter_map(|s| Some((s["metric"]["reason"].as_str()?.to_owned(), s["value"][1].as_str()?.parse::<f64>().ok()?)))
        .collect())
}

fn bar(done: u64, total: u64, width: usize) -> String {
    let frac = if total == 0 { 1.0 } else { (done as f64 / total as f64).clamp(0.0, 1.0) };
    let full = (frac * width as f64).round() as usize;
    format!("[{}{}] {:5.1}% toward sold out", "#".repeat(full), ".".repeat(width - full), frac * 100.0)
}

fn rate(a: &Reading, b: &Reading) -> f64 {
    let dt = b.at.duration_since(a.at).as_secs_f64();
    if dt <= 0.0 { 0.0 } else { b.figures.sold.saturating_sub(a.figures.sold) as f64 / dt }
}

fn render_figures(out: &mut Vec<String>, v: &View, r: &Reading) {
    let f = &r.figures;
    let why = if f.sold_out_manual { " (SRE switch)" } else if f.sold_out_flag { " (stock)" } else { "" };
    out.push(format!("state      {:<10} sold out: {}{why}", f.state.as_str(), if f.sold_out_flag { "yes" } else { "no" }));
    out.push(format!("stock      {} total, {} left, {} sold ({} paid), {} buyers", f.stock_total, f.stock_left, f.sold, f.paid, f.buyers));
    out.push(format!("progress   {}", bar(f.stock_total.saturating_sub(f.stock_left), f.stock_total, 40)));
    match (&v.previous, &v.first) {
        (Some(p), Some(f)) => out.push(format!("rate       {:.1} sold/s now, {:.1} sold/s since watching", rate(p, r), rate(f, r))),
        _ => out.push("rate       (from the second refresh on)".to_owned()),
    }
    let outcomes: Vec<String> = r.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
    out.push(format!("origin     {}", if outcomes.is_empty() { "no buys answered yet".to_owned() } else { outcomes.join("  ") }));
}

fn render(v: &View, o: &WatchOptions) -> String {
    let mut out = vec![format!("seckillctl watch {}   origin {}   {} UTC", o.sku, o.origin, clock())];
    if let Some(r) = &v.last {
        render_figures(&mut out, v, r);
    }
    match (&o.prometheus, &v.edge) {
        (None, _) => out.push("edge/s     (give --prometheus URL for the edges' decisions per second)".into()),
        (Some(_), Some(e)) if !e.is_empty() => out.push(format!("edge/s     {}", e.iter().map(|(k, x)| format!("{k} {x:.1}")).collect::<Vec<_>>().join("  "))),
        (Some(p), _) if v.prometheus_down.is_none() => out.push(format!("edge/s     no edge decisions in Prometheus yet ({p})")),
        _ => {}
    }
    if let Some((since, why)) = &v.origin_down {
        out.push(format!("WARNING    origin unreachable since {since} ({why}); showing the last known figures"));
    }
    if let Some((since, why)) = &v.prometheus_down {
        out.push(format!("WARNING    Prometheus unreachable since {since} ({why}); edge rates are the last known"));
    }
    out.join("\n")
}

/// One refresh: read the origin (and Prometheus), update the view. Only the first origin failure is fatal.
async fn refresh(client: &HttpClient, o: &WatchOptions, v: &mut View) -> Result<(), WatchError> {
    match read_origin(client, o).await {
        Ok(r) => {
            v.origin_down = None;
            v.first.get_or_insert_with(|| r.clone());
            v.previous = v.last.replace(r);
        }
        Err(e) if v.last.is_none() => return Err(e),
        Err(e) => {
            let since = v.origin_down.take().map(|(s, _)| s).unwrap_or_else(clock);
            v.origin_down = Some((since, e.to_string()));
        }
    }
    if let Some(p) = &o.prometheus {
        match read_edges(client, p).await {
            Ok(e) => (v.edge, v.prometheus_down) = (Some(e), None),
            Err(e) => {
                let since = v.prometheus_down.take().map(|(s, _)| s).unwrap_or_else(clock);
                v.prometheus_down = Some((since, e));
            }
        }
    }
    Ok(())
}

/// Run the view: refresh every `interval`, redrawing in place on a terminal (frames one after the
/// other otherwise), until `count` refreshes were shown.
pub async fn watch(o: &WatchOptions) -> Result<(), WatchError> {
    use std::io::{IsTerminal as _, Write as _};
    let client = HttpClient::new(o.interval.max(Duration::from_millis(500)).min(Duration::from_secs(5)));
    let tty = std::io::stdout().is_terminal() && o.count != Some(1);
    let mut v = View::default();
    let mut shown = 0u64;
    loop {
        let started = Instant::now();
        refresh(&client, o, &mut v).await?;
        let frame = render(&v, o);
        let mut stdout = std::io::stdout().lock();
        let written = if tty { write!(stdout, "\x1b[H\x1b[2J{frame}\n") } else { write!(stdout, "{frame}\n\n") };
        if written.and_then(|_| stdout.flush()).is_err() {
            return Ok(());
        }
        drop(stdout);
        shown += 1;
        if o.count.is_some_and(|c| shown >= c) {
            return Ok(());
        }
        tokio::time::sleep(o.interval.saturating_sub(started.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_buy_outcomes_from_the_origin_metrics() {
        let text = "# TYPE seckill_origin_requests counter\nseckill_origin_requests_total{route=\"buy\",outcome=\"won\"} 12\nseckill_origin_requests_total{route=\"buy\",outcome=\"busy\"} 3\nseckill_origin_requests_total{route=\"admin\",outcome=\"show\"} 9\n# EOF\n";
        let o = buy_outcomes(text);
        assert_eq!(o.get("won"), Some(&12));
        assert_eq!(o.get("busy"), Some(&3));
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn bar_fills_with_sales() {
        assert_eq!(bar(0, 10, 10), "[..........]   0.0% toward sold out");
        assert_eq!(bar(5, 10, 10), "[#####.....]  50.0% toward sold out");
        assert_eq!(bar(10, 10, 10), "[##########] 100.0% toward sold out");
    }

    #[test]
    fn encodes_a_query() {
        assert_eq!(encode("seckill:edge_decisions:rate1m"), "seckill%3Aedge_decisions%3Arate1m");
    }
}
