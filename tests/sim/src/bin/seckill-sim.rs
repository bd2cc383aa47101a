//! `seckill-sim`: play a flash sale against the stack and print the funnel report.
//!
//! - `seckill-sim run`: against a running stack (`cargo xtask demo` runs this with `--create`):
//!   the default scenario or `--scenario FILE` (TOML or JSON), with a few overrides by flag. Prints
//!   the report, writes `report.md`, `chart.svg` and `report.json` under `--out` (`target/sim/`).
//!   Exits 1 when the crowd's accounting disagrees with the stack's figures or a unit was oversold
//!   (with `--strict`, also when a demo target is missed).
//! - `seckill-sim e2e`: the end-to-end benchmark on stacks of its own (free ports), written to
//!   `target/bench/`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seckill_sim::harness::{OriginKind, Stack};
use seckill_sim::scenario::Scenario;
use seckill_sim::{e2e, simulate_batches, Addresses, Mode, Options, Secrets};

#[derive(Parser)]
#[command(name = "seckill-sim", about = "The flash-sale simulator: a crowd with bots against the stack, and the funnel report")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct ScenarioArgs {
    /// Scenario file (.toml or .json); default: the shipped `tests/sim/scenarios/default.toml`.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Override the sku.
    #[arg(long)]
    sku: Option<String>,
    /// Override the units on sale.
    #[arg(long)]
    stock: Option<u64>,
    /// Override the pre-start (ms between creating the sale and its start).
    #[arg(long)]
    starts_in_ms: Option<u64>,
    /// Override the bound on requests.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Override a population's size: `NAME=UIDS` (0 removes it). Repeatable.
    #[arg(long = "uids", value_name = "NAME=UIDS")]
    uids: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a crowd against a running stack and report.
    Run {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// The public edge.
        #[arg(long, env = "SECKILL_EDGE", default_value = "http://127.0.0.1:10000")]
        edge: String,
        /// The origin (for its metrics and the admin figures); a fleet's origins comma-separated
        /// (their metrics are added up).
        #[arg(long, env = "SECKILL_ORIGIN", default_value = "http://127.0.0.1:8080")]
        origin: String,
        /// Envoy's admin (for its stats); a fleet's edges' admins comma-separated (added up).
        #[arg(long, env = "SECKILL_ENVOY_ADMIN", default_value = "http://127.0.0.1:9901")]
        envoy_admin: String,
        /// Send the crowd straight at the origin instead (no edge; a baseline, not a shopper's path).
        #[arg(long)]
        direct: bool,
        /// Create (or reset) the sale from the scenario first.
        #[arg(long)]
        create: bool,
        /// Start a stack of its own on free ports for this run (Redis, origin, Envoy with the
        /// filter; implies --create) instead of using the addresses above.
        #[arg(long)]
        own_stack: bool,
        /// Where report.md, chart.svg and report.json go (default `target/sim/`).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        no_progress: bool,
        /// Also fail when a demo target is missed.
        #[arg(long)]
        strict: bool,
        #[arg(long, env = "SECKILL_TICKET_SECRET", default_value = seckill_core::demo::TICKET_SECRET, hide_env_values = true)]
        ticket_secret: String,
        #[arg(long, env = "SECKILL_ADMIN_TOKEN", default_value = seckill_core::demo::ADMIN_TOKEN, hide_env_values = true)]
        admin_token: String,
        #[arg(long, env = "SECKILL_EDGE_KEY", default_value = seckill_core::demo::EDGE_KEY, hide_env_values = true)]
        edge_key: String,
    },
    /// The end-to-end benchmark: the same crowd through the edge and straight at the origin, each
    /// on a fresh stack on free ports.
    E2e {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Where e2e.json and both reports go (default `target/bench/`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run the origin inside this process instead of the `seckill-origin` binary.
        #[arg(long)]
        in_process_origin: bool,
        #[arg(long)]
        no_progress: bool,
    },
}

fn load(args: &ScenarioArgs, default: &str, default_name: &str) -> anyhow::Result<Scenario> {
    let mut s = match &args.scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::from_toml(default, default_name)?,
    };
    if let Some(v) = &args.sku {
        s.sale.sku = v.clone();
    }
    if let Some(v) = args.stock {
        s.sale.stock = v;
    }
    if let Some(v) = args.starts_in_ms {
        s.sale.starts_in_ms = v;
    }
    if let Some(v) = args.max_requests {
        s.limits.max_requests = v;
    }
    for o in &args.uids {
        let (name, n) = o.split_once('=').ok_or_else(|| anyhow::anyhow!("--uids takes NAME=UIDS, got `{o}`"))?;
        let n: u32 = n.parse().map_err(|_| anyhow::anyhow!("--uids {o}: not a number"))?;
        let i = s.populations.iter().position(|p| p.name == name).ok_or_else(|| anyhow::anyhow!("--uids {o}: no population `{name}` in the scenario"))?;
        if n == 0 {
            s.populations.remove(i);
        } else {
            s.populations[i].uids = n;
        }
    }
    s.validate()?;
    Ok(s)
}

async fn main_inner(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Cmd::Run { scenario, edge, origin, envoy_admin, direct, create, own_stack, out, no_progress, strict, ticket_secret, admin_token, edge_key } => {
            let s = load(&scenario, seckill_sim::scenario::DEFAULT_TOML, "tests/sim/scenarios/default.toml")?;
            let mode = if direct { Mode::Direct } else { Mode::Edge };
            eprintln!(
                "seckill-sim: scenario `{}`: {} shoppers in {} populations, {} units of `{}`, at most {} requests / {} s",
                s.name,
                s.shoppers(),
                s.populations.len(),
                s.sale.stock,
                s.sale.sku,
                s.limits.max_requests,
                s.limits.max_duration_ms / 1000
            );
            let (stack, addresses, secrets) = if own_stack {
                let stack = tokio::task::spawn_blocking(move || Stack::start("sim-run", OriginKind::Auto, mode == Mode::Edge)).await??;
                eprintln!("seckill-sim: own stack on free ports (logs in {})", stack.dir().display());
                let a = Addresses { edge: stack.edge_url(), origin: stack.origin_url(), envoy_admin: stack.envoy_admin_url() };
                (Some(stack), a, Secrets::default())
            } else {
                (None, Addresses { edge: Some(edge), origin, envoy_admin: Some(envoy_admin) }, Secrets { ticket_secret, admin_token, edge_key })
            };
            let reports = simulate_batches(Options { scenario: s, mode, addresses, secrets, create_sale: create || own_stack, progress: !no_progress }).await;
            if let Some(stack) = stack {
                tokio::task::spawn_blocking(move || drop(stack)).await?;
            }
            let reports = reports?;
            let dir = out.unwrap_or_else(|| seckill_stack::paths::target_dir().join("sim"));
            let mut ok = true;
            for (i, report) in reports.iter().enumerate() {
                // A sale released in batches: one funnel per batch, each in its own folder.
                let dir = if reports.len() > 1 {
                    println!("\n════ batch {} of {} ════", i + 1, reports.len());
                    dir.join(format!("batch-{}", i + 1))
                } else {
                    dir.clone()
                };
                println!("{}", report.to_terminal());
                for p in report.write(&dir)? {
                    println!("written: {}", p.display());
                }
                ok &= report.consistent() && report.funnel.oversold == 0 && (!strict || report.targets.iter().all(|t| t.met));
            }
            if reports.len() > 1 {
                println!("{}", seckill_sim::report::batches_summary(&reports));
            }
            Ok(ok)
        }
        Cmd::E2e { scenario, out, in_process_origin, no_progress } => {
            let s = load(&scenario, e2e::E2E_TOML, "tests/sim/scenarios/e2e.toml")?;
            let dir = out.unwrap_or_else(|| seckill_stack::paths::target_dir().join("bench"));
            let kind = if in_process_origin { OriginKind::InProcess } else { OriginKind::Auto };
            let r = e2e::run(&s, kind, &dir, !no_progress).await?;
            println!("{}", e2e::render(&r));
            println!("written: {}", dir.join("e2e.json").display());
            Ok(true)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match main_inner(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("seckill-sim: the report shows a problem (see the cross-checks and targets above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("seckill-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
