//! The manifests operators apply (`envoy/k8s/`: Istio `WasmPlugin`, Envoy Gateway
//! `EnvoyExtensionPolicy`) validated against the published CRD schemas, vendored in
//! `envoy/k8s/schemas/` (their `$comment` names the upstream file and commit), the way the API
//! server validates them on `kubectl apply`. The filter configuration they carry is parsed by the
//! filter's own parser (the one Envoy runs at load), and the digests they pin agree with the
//! README's. Malformed manifests must fail.
//!
//! Not covered: the CRDs' CEL rules (`x-kubernetes-validations`), which only an API server runs.

use std::path::PathBuf;

use serde_json::{json, Value};

fn k8s_dir() -> PathBuf {
    seckill_tests::paths::workspace().join("envoy/k8s")
}

fn manifest(file: &str) -> Value {
    let text = std::fs::read_to_string(k8s_dir().join(file)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"))
}

fn schema(file: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(k8s_dir().join("schemas").join(file)).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema {file}: {e}"))
}

/// Every schema error of `doc`, one line each.
fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

const ISTIO: (&str, &str, &str) = ("istio-wasmplugin.yaml", "istio-wasmplugin-v1alpha1.json", "extensions.istio.io/v1alpha1");
const GATEWAY: (&str, &str, &str) = ("envoy-gateway-extensionpolicy.yaml", "envoy-gateway-envoyextensionpolicy-v1alpha1.json", "gateway.envoyproxy.io/v1alpha1");

/// The filter configuration in a manifest (Istio: `spec.pluginConfig`; Envoy Gateway:
/// `spec.wasm[0].config`), as the JSON the filter receives.
fn filter_config(doc: &Value) -> Value {
    let c = doc["spec"].get("pluginConfig").cloned().unwrap_or_else(|| doc["spec"]["wasm"][0]["config"].clone());
    assert!(c.is_object(), "no filter configuration in {doc}");
    c
}

#[test]
fn manifests_match_the_published_schemas() {
    for (file, schema_file, api_version) in [ISTIO, GATEWAY] {
        let doc = manifest(file);
        assert_eq!(doc["apiVersion"], api_version, "{file}");
        let errs = errors(&schema(schema_file), &doc);
        assert!(errs.is_empty(), "{file} does not match {schema_file}:\n{}", errs.join("\n"));
    }
}

#[test]
fn the_filter_accepts_the_configuration_they_carry() {
    for (file, _, _) in [ISTIO, GATEWAY] {
        let config = serde_json::to_vec(&filter_config(&manifest(file))).unwrap();
        if let Err(e) = seckill_edge::config::Config::from_json(&config) {
            panic!("{file}: the filter refuses its configuration: {e}");
        }
    }
}

#[test]
fn fail_closed_is_chosen() {
    assert_eq!(manifest(ISTIO.0)["spec"]["failStrategy"], "FAIL_CLOSE");
    assert_eq!(manifest(GATEWAY.0)["spec"]["wasm"][0]["failOpen"], false);
}

/// Each malformed manifest must be refused by its schema (the case a typo or a wrong value
/// produces), and a broken filter configuration by the filter's parser.
#[test]
fn malformed_manifests_fail_validation() {
    let istio = schema(ISTIO.1);
    let gateway = schema(GATEWAY.1);
    let cases: Vec<(&str, &jsonschema::Validator, Value, fn(&mut Value))> = vec![
        ("failStrategy FAIL_SOMETIMES", &istio, manifest(ISTIO.0), |d| d["spec"]["failStrategy"] = json!("FAIL_SOMETIMES")),
        ("phase as a number", &istio, manifest(ISTIO.0), |d| d["spec"]["phase"] = json!(3)),
        ("pluginConfig as a string", &istio, manifest(ISTIO.0), |d| d["spec"]["pluginConfig"] = json!("{}")),
        ("priority as text", &istio, manifest(ISTIO.0), |d| d["spec"]["priority"] = json!("high")),
        ("code type Git", &gateway, manifest(GATEWAY.0), |d| d["spec"]["wasm"][0]["code"]["type"] = json!("Git")),
        ("code without type", &gateway, manifest(GATEWAY.0), |d| {
            d["spec"]["wasm"][0]["code"].as_object_mut().unwrap().remove("type");
        }),
        ("image without url", &gateway, manifest(GATEWAY.0), |d| {
            d["spec"]["wasm"][0]["code"]["image"].as_object_mut().unwrap().remove("url");
        }),
        ("failOpen as \"no\"", &gateway, manifest(GATEWAY.0), |d| d["spec"]["wasm"][0]["failOpen"] = json!("no")),
        ("wasm as an object", &gateway, manifest(GATEWAY.0), |d| d["spec"]["wasm"] = json!({"name": "x"})),
    ];
    for (what, validator, mut doc, break_it) in cases {
        assert!(errors(validator, &doc).is_empty(), "{what}: the unbroken manifest must pass first");
        break_it(&mut doc);
        assert!(!errors(validator, &doc).is_empty(), "{what}: a malformed manifest passed validation");
    }
    let mut doc = manifest(ISTIO.0);
    doc["spec"]["pluginConfig"]["window_ms"] = json!(1000);
    let config = serde_json::to_vec(&filter_config(&doc)).unwrap();
    let e = seckill_edge::config::Config::from_json(&config).expect_err("window_ms 1000 with a 1000 ms lottery is refused");
    assert!(e.to_string().contains("start_lottery_ms"), "{e}");
}

/// The 64-hex digests on the lines marked `seckill-filter-digest`.
fn pinned_digests(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains("seckill-filter-digest"))
        .filter_map(|l| {
            let b = l.as_bytes();
            (0..b.len().saturating_sub(63)).find_map(|i| {
                let run = &l[i..i + 64];
                let bounded = (i == 0 || !b[i - 1].is_ascii_hexdigit()) && b.get(i + 64).is_none_or(|c| !c.is_ascii_hexdigit());
                (bounded && run.bytes().all(|c| c.is_ascii_hexdigit())).then(|| run.to_owned())
            })
        })
        .collect()
}

/// The manifests pin the digest the README's loading section gives (both written by
/// `cargo xtask oci --pin`), in the forms each fetcher checks.
#[test]
fn manifests_pin_the_readme_digest() {
    let readme = std::fs::read_to_string(seckill_tests::paths::workspace().join("README.md")).unwrap();
    let readme_digests = pinned_digests(&readme);
    assert!(!readme_digests.is_empty(), "README has no line marked seckill-filter-digest");
    let digest = &readme_digests[0];
    assert!(readme_digests.iter().all(|d| d == digest), "README disagrees with itself: {readme_digests:?}");
    let istio = manifest(ISTIO.0);
    assert_eq!(istio["spec"]["sha256"], json!(digest));
    let gateway = manifest(GATEWAY.0);
    let image = &gateway["spec"]["wasm"][0]["code"]["image"];
    assert_eq!(image["sha256"], json!(digest));
    assert!(image["url"].as_str().unwrap().ends_with(&format!("@sha256:{digest}")), "{image}");
}
