//! `cargo xtask up` / `down` / `demo`: the stack as background processes.
//!
//! `up` starts Redis (its own port and folder under `target/seckill/stack/`), the origin and Envoy
//! with the filter, waits until each is ready, records their pids in `target/seckill/stack/state`
//! and prints the addresses as `key=value` lines. `down` stops exactly the pids `up` recorded.
//! With `--edges N`, `--origins M` or `--redis-cluster` the same is a fleet
//! (`seckill_stack::fleet`): N edges behind a front Envoy, M origins, a Redis Cluster.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use seckill_core::demo;
use seckill_stack::fleet::{EdgeInputs, Fleet, FleetSpec, PublicPorts};
use seckill_stack::paths;

#[derive(clap::Args, Clone)]
pub struct UpArgs {
    /// The public edge (Envoy listener).
    #[arg(long, env = "SECKILL_EDGE_PORT", default_value_t = 10000)]
    pub edge_port: u16,
    /// Envoy's admin.
    #[arg(long, env = "SECKILL_ENVOY_ADMIN_PORT", default_value_t = 9901)]
    pub admin_port: u16,
    #[arg(long, env = "SECKILL_ORIGIN_PORT", default_value_t = 8080)]
    pub origin_port: u16,
    /// The stack's own Redis (never the machine's 6379).
    #[arg(long, env = "SECKILL_REDIS_PORT", default_value_t = 6390)]
    pub redis_port: u16,
    /// Envoy worker threads.
    #[arg(long, default_value_t = 2)]
    pub concurrency: u32,
    /// A fleet: N Envoys with the filter behind one front Envoy that routes by the ticket's uid.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub edges: Option<u16>,
    /// M origin processes behind every edge.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub origins: u16,
    /// A Redis Cluster (3 masters + 3 replicas on free ports) instead of one Redis.
    #[arg(long)]
    pub redis_cluster: bool,
    /// Also start Prometheus (Debian's) scraping every Envoy and origin, with the sale's rules
    /// (`envoy/monitoring/`).
    #[arg(long)]
    pub monitoring: bool,
    /// Prometheus, with `--monitoring`.
    #[arg(long, env = "SECKILL_PROMETHEUS_PORT", default_value_t = 9090)]
    pub prometheus_port: u16,
    /// Which build of the edge filter Envoy loads: `wasm` (proxy-wasm, the default) or `native`
    /// (the Envoy 1.40 dynamic module); see edge-filter/README.md.
    #[arg(long, env = "SECKILL_EDGE_BUILD", default_value = "wasm", value_parser = seckill_stack::edge_build::EdgeBuild::parse)]
    pub edge_build: seckill_stack::edge_build::EdgeBuild,
}

impl UpArgs {
    fn spec(&self) -> FleetSpec {
        FleetSpec {
            edges: usize::from(self.edges.unwrap_or(1)),
            front: self.edges.is_some(),
            origins: usize::from(self.origins),
            cluster: self.redis_cluster,
            concurrency: self.concurrency,
        }
    }
}

fn state_file() -> PathBuf {
    paths::stack_dir().join("stack").join("state")
}

fn read_state() -> Vec<(String, String)> {
    std::fs::read_to_string(state_file())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn alive(pid: &str) -> bool {
    Command::new("kill").args(["-0", pid]).stderr(std::process::Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

fn secret(var: &str, dev: &str) -> String {
    std::env::var(var).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| dev.to_owned())
}

fn admin_token() -> String {
    secret("SECKILL_ADMIN_TOKEN", demo::ADMIN_TOKEN)
}

fn check_free(port: u16, what: &str, var: &str) -> Result<(), String> {
    TcpListener::bind(("127.0.0.1", port))
        .map(|_| ())
        .map_err(|_| format!("port {port} for the {what} is taken; stop what uses it or set {var}"))
}

/// The sale page's sources, built into `target/seckill/site/` as a CDN serves them.
///
/// 1. The client logic: `cargo build -p seckill-page --target wasm32-unknown-unknown --profile wasm`,
///    then `wasm-bindgen --target web` (the pinned CLI, see `setup::wasm_bindgen_path`).
/// 2. Every asset gets a content-hashed name under `assets/` (`app.<hash>.wasm`, `glue.<hash>.js`
///    (wasm-bindgen's loader), `app.<hash>.js` (the shell), `app.<hash>.css`), so it can be cached
///    for a year as `immutable`: a new build is new names. A file naming another is hashed after
///    the name it contains is rewritten, so a change anywhere changes every name that leads to it.
/// 3. `index.html` (short-cached, not renamed) gets the hashed names and the catalogue inlined.
/// 4. `routes.yaml`: one Envoy `direct_response` route per asset (Envoy needs one per file), which
///    `seckill_stack::envoy_proc::render_template` puts in place of `{{SITE_ROUTES}}`.
///
/// The site is built in a scratch folder and swapped in whole, so a half-built site is never served.
pub fn build_site() -> Result<(), String> {
    let src = paths::workspace().join("static-site");
    let public = src.join("public");
    eprintln!("xtask: building the sale page (seckill-page, wasm32-unknown-unknown) into {}", site_dir().display());
    crate::run(crate::cargo().args(["build", "--quiet", "-p", "seckill-page", "--target", "wasm32-unknown-unknown", "--profile", "wasm"]))?;
    let module = paths::target_dir().join("wasm32-unknown-unknown/wasm/seckill_page.wasm");
    let bindgen_out = paths::stack_dir().join("site-bindgen");
    let _ = std::fs::remove_dir_all(&bindgen_out);
    crate::run(Command::new(crate::setup::wasm_bindgen_path()?).args(["--target", "web", "--no-typescript", "--remove-name-section", "--remove-producers-section", "--out-name", "seckill_page", "--out-dir"]).arg(&bindgen_out).arg(&module))?;

    let read = |p: PathBuf| std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let text = |p: PathBuf| String::from_utf8(read(p.clone())?).map_err(|_| format!("{} is not UTF-8", p.display()));
    let mut site = SiteBuilder::default();
    let wasm = site.asset("app", "wasm", read(bindgen_out.join("seckill_page_bg.wasm"))?);
    let glue = site.asset("glue", "js", read(bindgen_out.join("seckill_page.js"))?);
    let css = site.asset("app", "css", read(public.join("app.css"))?);
    let shell = replace_all(&text(public.join("app.js"))?, "app.js", &[("\"./glue.js\"", &format!("\"./{glue}\"")), ("\"./app.wasm\"", &format!("\"./{wasm}\""))])?;
    let app = site.asset("app", "js", shell.into_bytes());
    // The catalogue sits in a <script type="application/json">: `</` must not end that element.
    // (It is checked by the page's unit tests, which parse this very file.)
    let catalogue = text(src.join("catalogue.json"))?;
    let index = replace_all(
        &text(public.join("index.html"))?,
        "index.html",
        &[
            ("{{APP_JS}}", &format!("/assets/{app}")),
            ("{{GLUE_JS}}", &format!("/assets/{glue}")),
            ("{{WASM}}", &format!("/assets/{wasm}")),
            ("{{CSS}}", &format!("/assets/{css}")),
            ("{{CATALOGUE}}", &catalogue.trim().replace("</", "<\\/")),
        ],
    )?;
    site.write(&index)
}

/// Replace each `(placeholder, value)` in `text`; a placeholder that is missing is an error, so a
/// renamed file or placeholder cannot silently ship a page pointing at nothing.
fn replace_all(text: &str, file: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
    let mut out = text.to_owned();
    for (from, to) in pairs {
        if !out.contains(from) {
            return Err(format!("static-site/public/{file} has no `{from}` to replace"));
        }
        out = out.replace(from, to);
    }
    Ok(out)
}

/// The hashed assets of one site build.
#[derive(Default)]
struct SiteBuilder {
    /// (file name, content type, bytes)
    assets: Vec<(String, &'static str, Vec<u8>)>,
}

impl SiteBuilder {
    /// Add an asset; returns its content-hashed name (`app.3f9c0a1b2c3d4e5f.js`).
    fn asset(&mut self, stem: &str, ext: &str, bytes: Vec<u8>) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(&bytes);
        let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let name = format!("{stem}.{hash}.{ext}");
        let content_type = match ext {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "wasm" => "application/wasm",
            _ => "application/octet-stream",
        };
        self.assets.push((name.clone(), content_type, bytes));
        name
    }

    /// Envoy routes for the assets (`{{SITE_DIR}}` is filled in when the config is rendered).
    fn routes(&self) -> String {
        let mut out = String::from("# Generated by `cargo xtask build` (build_site): one route per content-hashed asset.\n");
        for (name, content_type, _) in &self.assets {
            out.push_str(&format!(
                concat!(
                    "- match: {{ path: \"/assets/{name}\" }}\n",
                    "  direct_response:\n",
                    "    status: 200\n",
                    "    body: {{ filename: \"{{{{SITE_DIR}}}}/assets/{name}\" }}\n",
                    "  response_headers_to_add:\n",
                    "  - header: {{ key: content-type, value: \"{ct}\" }}\n",
                    "    append_action: OVERWRITE_IF_EXISTS_OR_ADD\n",
                    "  - header: {{ key: cache-control, value: \"public, max-age=31536000, immutable\" }}\n",
                    "    append_action: OVERWRITE_IF_EXISTS_OR_ADD\n",
                    "  - header: {{ key: x-content-type-options, value: nosniff }}\n",
                ),
                name = name,
                ct = content_type
            ));
        }
        out
    }

    /// Write `index.html`, `assets/*` and `routes.yaml` to a fresh folder and swap it in.
    fn write(&self, index: &str) -> Result<(), String> {
        let to = site_dir();
        let fresh = to.with_extension("new");
        let old = to.with_extension("old");
        let _ = std::fs::remove_dir_all(&fresh);
        let _ = std::fs::remove_dir_all(&old);
        let assets = fresh.join("assets");
        std::fs::create_dir_all(&assets).map_err(|e| format!("cannot create {}: {e}", assets.display()))?;
        let write = |p: PathBuf, bytes: &[u8]| std::fs::write(&p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()));
        for (name, _, bytes) in &self.assets {
            write(assets.join(name), bytes)?;
        }
        write(fresh.join("index.html"), index.as_bytes())?;
        write(fresh.join("routes.yaml"), self.routes().as_bytes())?;
        if to.exists() {
            std::fs::rename(&to, &old).map_err(|e| format!("cannot move {} aside: {e}", to.display()))?;
        }
        std::fs::rename(&fresh, &to).map_err(|e| format!("cannot move {} into place: {e}", fresh.display()))?;
        let _ = std::fs::remove_dir_all(&old);
        let total: usize = self.assets.iter().map(|(_, _, b)| b.len()).sum::<usize>() + index.len();
        eprintln!("xtask: sale page built: index.html + {} assets, {total} bytes before compression", self.assets.len());
        Ok(())
    }
}

pub fn site_dir() -> PathBuf {
    paths::stack_dir().join("site")
}

fn print_addresses(state: &[(String, String)]) {
    for (k, v) in state.iter().filter(|(k, _)| !k.ends_with("_pid")) {
        println!("{k}={v}");
    }
}

/// The filter config of the stack's edges (`seckill_stack::envoy_proc::stack_filter_config`), with
/// the secrets from the environment or the demo's.
pub fn stack_filter_config(edge_id: Option<&str>) -> String {
    seckill_stack::envoy_proc::stack_filter_config(&secret("SECKILL_TICKET_SECRET", demo::TICKET_SECRET), &secret("SECKILL_EDGE_KEY", demo::EDGE_KEY), edge_id)
}

pub fn up(args: &UpArgs) -> Result<(), String> {
    let state = read_state();
    if state.iter().any(|(k, v)| k.ends_with("_pid") && alive(v)) {
        eprintln!("xtask: the stack is already up (`cargo xtask down` stops it)");
        print_addresses(&state);
        return Ok(());
    }
    let spec = args.spec();
    if !spec.cluster {
        check_free(args.redis_port, "stack's Redis", "SECKILL_REDIS_PORT")?;
    }
    check_free(args.origin_port, "origin", "SECKILL_ORIGIN_PORT")?;
    check_free(args.edge_port, "edge", "SECKILL_EDGE_PORT")?;
    check_free(args.admin_port, "Envoy admin", "SECKILL_ENVOY_ADMIN_PORT")?;
    let dir = paths::stack_dir().join("stack");
    let _ = std::fs::remove_dir_all(dir.join("redis-cluster"));
    let envoy_bin = crate::setup::envoy_path()?;
    let ports = PublicPorts { entrance: args.edge_port, entrance_admin: args.admin_port, origin: args.origin_port, redis: args.redis_port };
    let config = |_: usize, edge_id: Option<&str>| stack_filter_config(edge_id);
    let inputs = EdgeInputs { envoy_bin: &envoy_bin, filter_wasm: args.edge_build.module(), filter_config: &config, site_dir: site_dir() };
    let fleet = Fleet::start(spec, ports, &dir, &paths::native_bin("seckill-origin"), &admin_token(), &inputs)?;
    let monitoring = if args.monitoring {
        let admins: Vec<_> = fleet.edges.iter().map(|e| e.admin).chain(fleet.front.iter().map(|f| f.admin)).collect();
        let origins: Vec<_> = fleet.origins.iter().map(|o| o.addr).collect();
        seckill_stack::prometheus_proc::start_detached(args.prometheus_port, &admins, &origins, &admin_token(), &dir.join("prometheus"))?
    } else {
        Vec::new()
    };
    let mut state = fleet.addresses();
    state.extend(monitoring);
    state.extend(fleet.detach().into_iter().map(|(name, pid)| (format!("{name}_pid"), pid.to_string())));
    let text: String = state.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(state_file(), text).map_err(|e| e.to_string())?;
    eprintln!("xtask: stack up (logs in {}; `cargo xtask down` stops it)", dir.display());
    print_addresses(&state);
    Ok(())
}

pub fn down() -> Result<(), String> {
    let state = read_state();
    if state.is_empty() {
        eprintln!("xtask: no stack recorded as up");
        return Ok(());
    }
    // In the order `up` recorded them: the front and the edges first, so no new requests arrive
    // while the origins drain, Redis last.
    for (_, pid) in state.iter().filter(|(k, _)| k.ends_with("_pid")) {
        if !alive(pid) {
            continue;
        }
        let _ = Command::new("kill").args(["-TERM", pid]).status();
        let stopped = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            !alive(pid)
        });
        if !stopped {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = std::fs::remove_file(state_file());
    eprintln!("xtask: stack stopped");
    Ok(())
}

/// `cargo xtask demo`: setup, build, up, then the flash-sale simulator (`seckill-sim run --create`
/// with the default scenario, `tests/sim/scenarios/default.toml`): it creates the demo sale, plays
/// the crowd through the edge, prints the funnel report and writes it to `target/sim/`; then a
/// second sale released in two batches (`batches.toml`), one funnel per batch
/// (`target/sim/batch-N/`). It stops the stack afterwards unless `--keep`, or unless the stack was
/// already up when it began.
pub fn demo(keep: bool, args: &UpArgs) -> Result<(), String> {
    crate::setup::setup()?;
    crate::build()?;
    // A stack that is already up (someone's `cargo xtask up`) is used as it is and left running:
    // the demo stops only what it started.
    let was_up = read_state().iter().any(|(k, v)| k.ends_with("_pid") && alive(v));
    up(args)?;
    let state = read_state();
    let addr = |key: &str, port: u16| state.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
    let edge = addr("edge", args.edge_port);
    // A fleet: every origin and every edge's admin, so the report adds them all up.
    let every = |prefix: &str| state.iter().filter(|(k, _)| k.strip_prefix(prefix).is_some_and(|n| n.parse::<u32>().is_ok())).map(|(_, v)| v.clone()).collect::<Vec<_>>().join(",");
    let origin = Some(every("origin_")).filter(|s| !s.is_empty()).unwrap_or_else(|| addr("origin", args.origin_port));
    let envoy_admin = Some(every("envoy_admin_")).filter(|s| !s.is_empty()).unwrap_or_else(|| addr("envoy_admin", args.admin_port));
    // The demo's sale, then a second one released in two batches (one funnel per batch).
    let result = ["default", "batches"].iter().try_for_each(|name| {
        let scenario = paths::workspace().join(format!("tests/sim/scenarios/{name}.toml"));
        crate::run(
            Command::new(paths::native_bin("seckill-sim"))
                .args(["run", "--create", "--scenario"])
                .arg(&scenario)
                .args(["--edge", &edge, "--origin", &origin, "--envoy-admin", &envoy_admin]),
        )
    });
    println!("page={edge}/?sku=demo-phone");
    if was_up {
        eprintln!("xtask: the stack was already up before the demo; left running (`cargo xtask down` stops it)");
    } else if keep {
        eprintln!("xtask: the stack keeps running (`cargo xtask down` stops it)");
    } else {
        down()?;
    }
    result
}
