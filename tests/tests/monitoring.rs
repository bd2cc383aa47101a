//! The sale-day alert and recording rules (`envoy/monitoring/rules/`) checked with the tool
//! operators use: `promtool check rules` (syntax, PromQL) and `promtool test rules` (each alert's
//! unit tests in `envoy/monitoring/tests/alerts_test.yml`). Also: every alert has a unit test and a
//! runbook section, and a rule file with a broken threshold makes the unit tests fail (so they can).
//!
//! `promtool` is Debian's `prometheus` package, installed by `cargo xtask setup`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn monitoring() -> PathBuf {
    seckill_tests::paths::workspace().join("envoy/monitoring")
}

/// Run `promtool args...` in `dir`: (success, stdout + stderr).
fn promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs (Debian's `prometheus` package; `cargo xtask setup` installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The `- alert: Name` entries of a rule file.
fn alert_names(rules: &str) -> Vec<String> {
    rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).map(|n| n.trim().to_owned()).collect()
}

#[test]
fn rules_pass_promtool_check() {
    let dir = monitoring();
    let (ok, out) = promtool(&dir, &["check", "rules", "rules/recording.yml", "rules/alerts.yml"]);
    assert!(ok, "promtool check rules failed:\n{out}");
    assert!(out.contains("SUCCESS: 12 rules found") && out.contains("SUCCESS: 11 rules found"), "{out}");
}

#[test]
fn alert_unit_tests_pass() {
    let (ok, out) = promtool(&monitoring().join("tests"), &["test", "rules", "alerts_test.yml"]);
    assert!(ok, "promtool test rules failed:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_has_a_unit_test_and_a_runbook_section() {
    let dir = monitoring();
    let rules = std::fs::read_to_string(dir.join("rules/alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("tests/alerts_test.yml")).unwrap();
    let runbook = std::fs::read_to_string(seckill_tests::paths::workspace().join("docs/runbook.md")).unwrap();
    let names = alert_names(&rules);
    assert_eq!(names.len(), 11, "{names:?}");
    for name in &names {
        assert!(tests.contains(&format!("alertname: {name}\n")), "alert {name} has no promtool unit test");
        assert!(runbook.contains(&format!("### {name}\n")), "alert {name} has no `### {name}` section in docs/runbook.md");
        assert!(rules.contains(&format!("runbook: docs/runbook.md#{}", name.to_lowercase())), "alert {name} does not link its runbook section");
    }
}

/// The unit tests must be able to fail: with the origin-busy threshold raised from 5 % to 50 %,
/// the case expecting it to fire at 10 % busy fails.
#[test]
fn a_broken_threshold_fails_the_unit_tests() {
    let dir = seckill_tests::paths::scratch_dir("promtool-mutant");
    for sub in ["rules", "tests"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for file in ["rules/recording.yml", "tests/alerts_test.yml"] {
        std::fs::copy(monitoring().join(file), dir.join(file)).unwrap();
    }
    let alerts = std::fs::read_to_string(monitoring().join("rules/alerts.yml")).unwrap();
    let mutant = alerts.replace("seckill:origin_busy:ratio1m > 0.05", "seckill:origin_busy:ratio1m > 0.5");
    assert_ne!(mutant, alerts, "the busy threshold moved; update this test");
    std::fs::write(dir.join("rules/alerts.yml"), mutant).unwrap();
    let (ok, out) = promtool(&dir.join("tests"), &["test", "rules", "alerts_test.yml"]);
    assert!(!ok, "promtool test rules passed with a broken threshold:\n{out}");
    assert!(out.contains("alertname: SeckillOriginBusy"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
