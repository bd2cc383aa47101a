//! `seckillctl`: the SRE's command line over the origin's admin API.
//!
//! ```text
//! seckillctl sale create phone-1 --stock 500 --starts-at +30s --ends-at +1h
//! seckillctl sale show phone-1          # exact figures
//! seckillctl sale list
//! seckillctl sale challenge phone-1 18  # proof-of-work difficulty in bits (0: none), also mid-sale
//! seckillctl sold-out on phone-1        # the switch; reaches every edge worker within the bound
//! seckillctl sold-out off phone-1
//! seckillctl watch phone-1 --prometheus http://127.0.0.1:9090   # live view, refreshed in place
//! ```
//! `--json` prints the API's JSON instead of the readable view.

use std::process::ExitCode;
use std::time::Duration;

/// `println!` that ends the program quietly when stdout is a closed pipe (`seckillctl sale list |
/// head -1`) instead of panicking, as Unix tools do.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("seckillctl: cannot write the answer: {e}");
            std::process::exit(1);
        }
    }};
}

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use seckill_origin::client::{Answer, HttpClient};
use seckill_core::sale::Batch;
use seckill_origin::store::SaleFigures;

#[derive(Parser, Debug)]
#[command(name = "seckillctl", about = "Flash-sale SRE tool: create and inspect sales, flip the sold-out switch, watch a sale live")]
struct Cli {
    /// The origin's base URL (the admin API is not routed through the public edge).
    #[arg(long, global = true, env = "SECKILL_ORIGIN", default_value = "http://127.0.0.1:8080")]
    origin: String,
    /// Admin token.
    #[arg(long, global = true, env = "SECKILL_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the API's JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create, reset, show or list sales.
    #[command(subcommand)]
    Sale(SaleCommand),
    /// The sold-out switch: `sold-out on SKU` / `sold-out off SKU`.
    SoldOut {
        switch: Switch,
        sku: String,
    },
    /// Live view of one sale, refreshed in place: stock left, sold, rate, edge decisions/s, origin
    /// outcomes, a bar toward sold out. Keeps going (and says so) when the origin or Prometheus blips.
    Watch {
        sku: String,
        /// Prometheus to read the edges' decisions per second from (`seckill:edge_decisions:rate1m`).
        #[arg(long, env = "SECKILL_PROMETHEUS")]
        prometheus: Option<String>,
        /// Time between refreshes (`1s`, `500ms`).
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// Print one view and exit.
        #[arg(long, conflicts_with = "count")]
        once: bool,
        /// Stop after this many refreshes.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum SaleCommand {
    /// Create a sale, or reset an existing one (its orders are dropped).
    Create {
        sku: String,
        /// Units on sale (with --batch: their sum, which may be left out).
        #[arg(long)]
        stock: Option<u64>,
        /// Release the stock in batches: `WHEN=UNITS`, WHEN in the forms of --starts-at (the first
        /// batch at the start), repeated per batch, e.g. `--batch now=100 --batch +10m=100`.
        #[arg(long = "batch", value_name = "WHEN=UNITS")]
        batches: Vec<String>,
        /// Unix ms, RFC 3339 (`2026-11-23T20:00:00Z`), `now`, or `+30s` / `+5m` / `+2h` from now.
        #[arg(long, default_value = "now")]
        starts_at: String,
        /// Same forms as --starts-at.
        #[arg(long, default_value = "+1h")]
        ends_at: String,
        #[arg(long, default_value_t = 1)]
        per_user_limit: u32,
        #[arg(long, default_value_t = 900)]
        pay_within_s: u64,
        /// Difficulty of the proof-of-work challenge asked of every buy from the start, in bits
        /// (0: none).
        #[arg(long, default_value_t = 0)]
        challenge_bits: u32,
    },
    /// Set the difficulty of a sale's challenge (bits; 0: none), also while it runs.
    Challenge { sku: String, bits: u32 },
    /// Exact figures of one sale.
    Show { sku: String },
    /// Every sale.
    List,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Switch {
    On,
    Off,
}

/// Parse a point in time: Unix ms, RFC 3339, `now`, or `+<duration>` from `now_ms`.
fn parse_time(s: &str, now_ms: u64) -> anyhow::Result<u64> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ms);
    }
    if let Some(rel) = s.strip_prefix('+') {
        let d = humantime::parse_duration(rel).with_context(|| format!("`{s}`: expected e.g. +30s, +5m, +2h"))?;
        return Ok(now_ms + d.as_millis() as u64);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().with_context(|| format!("`{s}` is not a Unix time in ms"));
    }
    let t = humantime::parse_rfc3339_weak(s).with_context(|| format!("`{s}`: expected Unix ms, RFC 3339, now or +duration"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

/// Parse one `--batch WHEN=UNITS`.
fn parse_batch(s: &str, now_ms: u64) -> anyhow::Result<Batch> {
    let (when, units) = s.rsplit_once('=').with_context(|| format!("--batch `{s}`: expected WHEN=UNITS, e.g. +10m=100"))?;
    let stock = units.trim().parse().with_context(|| format!("--batch `{s}`: `{units}` is not a number of units"))?;
    Ok(Batch { at: parse_time(when, now_ms)?, stock })
}

fn fmt_time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn print_figures(f: &SaleFigures) {
    out!("sale        {}", f.sku);
    out!("state       {}", f.state.as_str());
    out!("window      {} .. {}", fmt_time(f.starts_at), fmt_time(f.ends_at));
    out!("stock       {} total, {} left", f.stock_total, f.stock_left);
    out!("orders      {} holding a unit ({} paid), {} buyers", f.sold, f.paid, f.buyers);
    let why = if f.sold_out_manual { " (SRE switch)" } else if f.sold_out_flag { " (stock)" } else { "" };
    out!("sold out    {}{}", if f.sold_out_flag { "yes" } else { "no" }, why);
    out!("limits      {} per uid, pay within {} s", f.per_user_limit, f.pay_within_s);
    for (i, b) in f.batches.iter().enumerate() {
        out!("batch {}     {} units at {}{}", i + 1, b.stock, fmt_time(b.at), if Some(b.at) == f.next_batch_at { " (next)" } else { "" });
    }
    if f.challenge_bits > 0 {
        out!("challenge   {} bits of proof of work per uid (about {} hashes)", f.challenge_bits, 1u64 << f.challenge_bits.min(63));
    }
}

fn check(answer: Answer) -> anyhow::Result<Answer> {
    if answer.status.is_success() {
        return Ok(answer);
    }
    let msg = answer.json_value().get("error").and_then(|e| e.as_str()).map(str::to_owned).unwrap_or_else(|| answer.text());
    bail!("origin answered {}: {}", answer.status, msg)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let token = cli.token.filter(|t| !t.is_empty()).ok_or_else(|| anyhow!("admin token required: --token or SECKILL_ADMIN_TOKEN"))?;
    let auth = format!("Bearer {token}");
    let h = [("authorization", auth.as_str())];
    let base = cli.origin.trim_end_matches('/');
    if let Command::Watch { sku, prometheus, interval, once, count } = cli.command {
        let opts = seckill_origin::watch::WatchOptions { origin: base.to_owned(), token, sku, prometheus, interval, count: if once { Some(1) } else { count } };
        return Ok(seckill_origin::watch::watch(&opts).await?);
    }
    let client = HttpClient::new(Duration::from_secs(10));
    let answer = match cli.command {
        Command::Sale(SaleCommand::Create { sku, stock, batches, starts_at, ends_at, per_user_limit, pay_within_s, challenge_bits }) => {
            let now = seckill_origin::now_ms();
            let batches = batches.iter().map(|b| parse_batch(b, now)).collect::<anyhow::Result<Vec<Batch>>>()?;
            let stock = match (stock, batches.is_empty()) {
                (Some(s), _) => s,
                (None, false) => batches.iter().map(|b| b.stock).sum(),
                (None, true) => bail!("--stock is required (or --batch WHEN=UNITS, once per batch)"),
            };
            let mut body = serde_json::json!({
                "stock": stock,
                "starts_at": parse_time(&starts_at, now)?,
                "ends_at": parse_time(&ends_at, now)?,
                "per_user_limit": per_user_limit,
                "pay_within_s": pay_within_s,
            });
            // Only when asked for: an older origin refuses a field it does not know.
            if challenge_bits > 0 {
                body["challenge_bits"] = challenge_bits.into();
            }
            if !batches.is_empty() {
                body["batches"] = serde_json::to_value(&batches)?;
            }
            client.put_json(&format!("{base}/admin/sales/{sku}"), &h, &body).await?
        }
        Command::Sale(SaleCommand::Challenge { sku, bits }) => {
            client.put_json(&format!("{base}/admin/sales/{sku}/challenge"), &h, &serde_json::json!({ "bits": bits })).await?
        }
        Command::Sale(SaleCommand::Show { sku }) => client.get(&format!("{base}/admin/sales/{sku}"), &h).await?,
        Command::Sale(SaleCommand::List) => {
            let a = check(client.get(&format!("{base}/admin/sales"), &h).await?)?;
            if cli.json {
                out!("{}", a.text());
            } else {
                #[derive(serde::Deserialize)]
                struct List {
                    sales: Vec<SaleFigures>,
                }
                let list: List = a.json().context("unexpected answer from the origin")?;
                out!("{:<24} {:<9} {:>9} {:>9} {:>9}  sold out", "sku", "state", "stock", "left", "orders");
                for f in list.sales {
                    out!("{:<24} {:<9} {:>9} {:>9} {:>9}  {}", f.sku, f.state.as_str(), f.stock_total, f.stock_left, f.sold, if f.sold_out_flag { "yes" } else { "no" });
                }
            }
            return Ok(());
        }
        Command::SoldOut { switch, sku } => {
            let body = serde_json::json!({ "sold_out": matches!(switch, Switch::On) });
            client.put_json(&format!("{base}/admin/sales/{sku}/sold-out"), &h, &body).await?
        }
        Command::Watch { .. } => unreachable!("handled above"),
    };
    let answer = check(answer)?;
    if cli.json {
        out!("{}", answer.text());
    } else {
        let f: SaleFigures = answer.json().context("unexpected answer from the origin")?;
        print_figures(&f);
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seckillctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_batch, parse_time};
    use seckill_core::sale::Batch;

    #[test]
    fn times() {
        assert_eq!(parse_time("now", 1000).unwrap(), 1000);
        assert_eq!(parse_time("+30s", 1000).unwrap(), 31_000);
        assert_eq!(parse_time("+2m", 0).unwrap(), 120_000);
        assert_eq!(parse_time("1234", 0).unwrap(), 1234);
        assert_eq!(parse_time("1970-01-01T00:00:01Z", 0).unwrap(), 1000);
        assert!(parse_time("tomorrow", 0).is_err());
        assert!(parse_time("+soon", 0).is_err());
    }

    #[test]
    fn batches() {
        assert_eq!(parse_batch("now=100", 1000).unwrap(), Batch { at: 1000, stock: 100 });
        assert_eq!(parse_batch("+10m=5", 0).unwrap(), Batch { at: 600_000, stock: 5 });
        assert_eq!(parse_batch("1970-01-01T00:00:01Z=7", 0).unwrap(), Batch { at: 1000, stock: 7 });
        assert!(parse_batch("+10m", 0).unwrap_err().to_string().contains("WHEN=UNITS"));
        assert!(parse_batch("+10m=lots", 0).unwrap_err().to_string().contains("not a number of units"));
    }
}
