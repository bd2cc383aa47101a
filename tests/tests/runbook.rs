//! Every command in `docs/runbook.md` exists: each `$ ` line is handed to the real program it names.
//!
//! - `seckillctl ...` and `cargo xtask ...`: run with `--help` appended, so the program parses the
//!   whole line (subcommands, flags, values) and prints help instead of acting; a renamed flag or
//!   subcommand fails the parse. What they do is tested elsewhere (tests named in the runbook).
//! - `promtool check|test rules ...`: run for real (they only read the repository's files).
//! - `promtool query ...`: parsed with `--help` (it needs a running Prometheus; the dashboard test
//!   queries a real one).
//!
//! Any other program is refused: the runbook only uses commands this project ships or installs.

use std::process::Command;

/// Split a command line on spaces, keeping single-quoted words whole (the runbook's only quoting).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn runbook_commands() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(seckill_tests::paths::workspace().join("docs/runbook.md")).unwrap();
    text.lines().filter_map(|l| l.trim_start().strip_prefix("$ ")).map(words).collect()
}

/// The command to run for one runbook line.
fn check_command(w: &[String]) -> Command {
    let ws = seckill_tests::paths::workspace();
    let mut c = match (w[0].as_str(), w.get(1).map(String::as_str)) {
        ("seckillctl", _) => {
            let mut c = Command::new(seckill_tests::paths::native_bin("seckillctl"));
            c.args(&w[1..]).arg("--help");
            c
        }
        ("cargo", Some("xtask")) => {
            let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            c.args(["run", "--quiet", "-p", "xtask", "--"]).args(&w[2..]).arg("--help");
            c
        }
        ("promtool", Some("check" | "test")) => {
            let mut c = Command::new("promtool");
            c.args(&w[1..]);
            c
        }
        ("promtool", Some("query")) => {
            let mut c = Command::new("promtool");
            c.args(&w[1..]).arg("--help");
            c
        }
        _ => panic!("docs/runbook.md: `{}` is not a command this project ships or tests", w.join(" ")),
    };
    c.current_dir(ws);
    c
}

#[test]
fn every_runbook_command_exists() {
    let commands = runbook_commands();
    assert!(commands.len() >= 8, "the runbook's `$ ` lines were not found: {commands:?}");
    for w in &commands {
        let out = check_command(w).output().unwrap_or_else(|e| panic!("`{}`: cannot run: {e}", w.join(" ")));
        assert!(
            out.status.success(),
            "docs/runbook.md: `{}` does not parse or fails:\n{}{}",
            w.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The check itself can fail: a misspelt flag is refused.
#[test]
fn a_misspelt_command_is_caught() {
    let bad = words("seckillctl sale create phone-1 --stok 500");
    assert!(!check_command(&bad).output().unwrap().status.success());
    let bad = words("cargo xtask oci --pinn");
    assert!(!check_command(&bad).output().unwrap().status.success());
}

#[test]
fn quoting_keeps_a_query_whole() {
    assert_eq!(words("promtool query instant http://x 'sum(rate(a[1m])) by (b)'"), ["promtool", "query", "instant", "http://x", "sum(rate(a[1m])) by (b)"]);
}
