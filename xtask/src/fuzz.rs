//! `cargo xtask fuzz [--seconds N] [TARGET...]`: run the cargo-fuzz targets in `tests/fuzz/` for a
//! bounded time each and report executions and findings. `cargo xtask test` runs each briefly.
//!
//! Needs a nightly toolchain (libFuzzer instrumentation) and `cargo-fuzz`; this installs both,
//! pinned ([`NIGHTLY`], [`CARGO_FUZZ_VERSION`]), when missing, so `cargo xtask test` passes on a
//! machine that only has stable. Corpora grow in `tests/fuzz/corpus/` (not committed), starting
//! from the committed seeds in `tests/fuzz/seeds/<target>/` when there are any (`native_input`:
//! one input per parser, a small ELF among them); a crash is saved in
//! `tests/fuzz/artifacts/<target>/` and fails the run.

use std::process::{Command, Stdio};

use seckill_stack::paths;

pub const TARGETS: [&str; 5] = ["ticket", "filter_config", "edge_state", "origin_request", "native_input"];
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The nightly the fuzz targets are built with (a dated one: a new nightly cannot break CI).
pub const NIGHTLY: &str = "nightly-2026-05-20";

fn has(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

/// Make sure nightly and cargo-fuzz are there.
pub fn setup() -> Result<(), String> {
    if !has(Command::new("rustup").args(["run", NIGHTLY, "rustc", "--version"])) {
        eprintln!("setup: rustup toolchain install {NIGHTLY} --profile minimal (for fuzzing)");
        crate::run(Command::new("rustup").args(["toolchain", "install", NIGHTLY, "--profile", "minimal"]))
            .map_err(|e| format!("fuzzing needs {NIGHTLY} and installing it failed: {e}"))?;
    }
    let version_ok = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION))
        .unwrap_or(false);
    if !version_ok {
        eprintln!("setup: cargo install cargo-fuzz {CARGO_FUZZ_VERSION}");
        crate::run(Command::new("cargo").args(["install", "--quiet", "--locked", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION]))?;
    }
    Ok(())
}

/// One target's result.
struct Outcome {
    target: String,
    runs: u64,
    seconds: u64,
    crashed: bool,
}

fn fuzz_cmd(args: &[&str]) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(paths::workspace()).args([&format!("+{NIGHTLY}"), "fuzz"]).args(args);
    c
}

pub fn fuzz(seconds: u64, targets: &[String]) -> Result<(), String> {
    setup()?;
    let targets: Vec<String> = if targets.is_empty() { TARGETS.iter().map(|s| s.to_string()).collect() } else { targets.to_vec() };
    for t in &targets {
        if !TARGETS.contains(&t.as_str()) {
            return Err(format!("unknown fuzz target `{t}`; targets: {}", TARGETS.join(", ")));
        }
    }
    eprintln!("xtask: building the fuzz targets (nightly, libFuzzer, address sanitizer)");
    crate::run(&mut fuzz_cmd(&["build", "--fuzz-dir", "tests/fuzz", "-O"]))?;
    let mut results = Vec::new();
    for t in &targets {
        let corpus = paths::workspace().join("tests/fuzz/corpus").join(t);
        let _ = std::fs::create_dir_all(&corpus);
        // libFuzzer reads every directory given and writes new inputs to the first one only.
        let seeds = paths::workspace().join("tests/fuzz/seeds").join(t);
        eprintln!("xtask: fuzzing {t} for {seconds} s");
        let out = fuzz_cmd(&["run", "--fuzz-dir", "tests/fuzz", "-O", t])
            .arg(&corpus)
            .args(seeds.is_dir().then_some(&seeds))
            .args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1"])
            .output()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        // libFuzzer ends with "Done N runs in S second(s)"; a crash prints an ERROR and a test unit.
        let done = log.lines().find_map(|l| {
            let rest = l.strip_prefix("Done ")?;
            let mut w = rest.split_whitespace();
            let runs = w.next()?.parse().ok()?;
            let secs = w.nth(2)?.parse().ok()?;
            Some((runs, secs))
        });
        let crashed = !out.status.success();
        if crashed {
            eprintln!("{}", log.lines().filter(|l| l.contains("ERROR") || l.contains("panicked") || l.contains("Test unit")).collect::<Vec<_>>().join("\n"));
        }
        let (runs, secs) = done.unwrap_or((0, seconds));
        results.push(Outcome { target: t.clone(), runs, seconds: secs, crashed });
    }
    println!("{:<16} {:>12} {:>8} {:>12}  findings", "fuzz target", "executions", "seconds", "exec/s");
    for r in &results {
        println!(
            "{:<16} {:>12} {:>8} {:>12}  {}",
            r.target,
            r.runs,
            r.seconds,
            r.runs / r.seconds.max(1),
            if r.crashed { "CRASH (see tests/fuzz/artifacts/)" } else { "none" }
        );
    }
    if results.iter().any(|r| r.crashed) {
        return Err("a fuzz target crashed".into());
    }
    Ok(())
}
