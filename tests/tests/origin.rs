//! The origin against a real Redis: the contract's answers, the invariants under concurrency,
//! expiry, the SRE switch, bypass attempts and Redis going away.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use seckill_tests::rig::{OriginRig, SaleSpec};

fn outcome(a: &seckill_origin::client::Answer) -> String {
    a.json_value()["outcome"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_crowd_sells_exactly_the_stock_once_per_uid() {
    let rig = OriginRig::start("crowd", |_| {}).await.unwrap();
    rig.create_sale("crowd-1", &SaleSpec::open(100)).await;
    // 2,000 attempts from 600 uids, all in flight at once.
    let attempts: Vec<String> = (0..2_000).map(|i| format!("u{}", i % 600)).collect();
    let answers: Vec<(String, seckill_origin::client::Answer)> = stream::iter(attempts)
        .map(|uid| {
            let rig = &rig;
            async move { (uid.clone(), rig.buy("crowd-1", &uid).await) }
        })
        .buffer_unordered(2_000)
        .collect()
        .await;
    let mut won: HashMap<String, String> = HashMap::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (uid, a) in &answers {
        let o = outcome(a);
        *counts.entry(o.clone()).or_default() += 1;
        assert_eq!(a.header("x-seckill-by"), Some("origin"));
        assert_eq!(a.header("x-seckill-outcome"), Some(o.as_str()));
        match o.as_str() {
            "won" => {
                assert_eq!(a.status, 201);
                let id = a.json_value()["order_id"].as_str().unwrap().to_owned();
                assert!(won.insert(uid.clone(), id).is_none(), "{uid} won twice");
            }
            "already_won" | "sold_out" => {}
            other => panic!("unexpected outcome {other}: {}", a.text()),
        }
    }
    assert_eq!(won.len(), 100, "outcomes: {counts:?}");
    // already_won always names the uid's own order.
    for (uid, a) in &answers {
        if outcome(a) == "already_won" {
            assert_eq!(a.json_value()["order_id"].as_str(), won.get(uid).map(String::as_str), "{uid}");
        }
    }
    let in_redis = rig.orders_in_redis("crowd-1");
    assert_eq!(in_redis.len(), 100);
    let owners: HashSet<&String> = in_redis.values().map(|(uid, _)| uid).collect();
    assert_eq!(owners.len(), 100, "one order per uid");
    for (uid, id) in &won {
        assert_eq!(in_redis.get(id).map(|(u, _)| u), Some(uid), "won answer without its order");
    }
    let f = rig.figures("crowd-1").await;
    assert_eq!((f.stock_total, f.stock_left, f.sold, f.buyers), (100, 0, 100, 100));
    assert!(f.sold_out_flag && !f.sold_out_manual);
    assert_eq!(f.state.as_str(), "sold_out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_won_is_idempotent_and_limits_hold() {
    let rig = OriginRig::start("idem", |_| {}).await.unwrap();
    rig.create_sale("idem-1", &SaleSpec::open(10)).await;
    let first = rig.buy("idem-1", "alice").await;
    assert_eq!(first.status, 201);
    let id = first.json_value()["order_id"].as_str().unwrap().to_owned();
    assert_eq!(first.json_value()["sku"], "idem-1");
    assert_eq!(first.json_value()["uid"], "alice");
    for _ in 0..5 {
        let again = rig.buy("idem-1", "alice").await;
        assert_eq!(again.status, 200);
        assert_eq!(outcome(&again), "already_won");
        assert_eq!(again.json_value()["order_id"].as_str(), Some(id.as_str()));
        assert_eq!(again.header("x-seckill-order-id"), Some(id.as_str()));
    }
    assert_eq!(rig.figures("idem-1").await.sold, 1);

    // per_user_limit 2: two orders, then already_won.
    let mut spec = SaleSpec::open(10);
    spec.per_user_limit = 2;
    rig.create_sale("idem-2", &spec).await;
    assert_eq!(rig.buy("idem-2", "bob").await.status, 201);
    assert_eq!(rig.buy("idem-2", "bob").await.status, 201);
    assert_eq!(outcome(&rig.buy("idem-2", "bob").await), "already_won");
    assert_eq!(rig.figures("idem-2").await.sold, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sale_window_and_unknown_skus() {
    let rig = OriginRig::start("window", |_| {}).await.unwrap();
    let now = seckill_tests::now_ms();
    let mut later = SaleSpec::open(5);
    later.starts_at = now + 60_000;
    later.ends_at = now + 120_000;
    rig.create_sale("later", &later).await;
    let a = rig.buy("later", "u1").await;
    assert_eq!((a.status.as_u16(), outcome(&a)), (403, "not_started".into()));
    assert_eq!(a.json_value()["starts_at"].as_u64(), Some(later.starts_at));

    let mut past = SaleSpec::open(5);
    past.starts_at = now - 120_000;
    past.ends_at = now - 60_000;
    rig.create_sale("past", &past).await;
    let a = rig.buy("past", "u1").await;
    assert_eq!((a.status.as_u16(), outcome(&a)), (403, "ended".into()));
    assert_eq!(a.json_value()["ends_at"].as_u64(), Some(past.ends_at));

    let a = rig.buy("nosuch", "u1").await;
    assert_eq!((a.status.as_u16(), outcome(&a)), (404, "unknown_sku".into()));
    let s = rig.http.get(&rig.url("/api/sales/nosuch"), &[]).await.unwrap();
    assert_eq!(s.status, 404);

    // The public status is coarse: no stock figure.
    let s = rig.http.get(&rig.url("/api/sales/later"), &[]).await.unwrap();
    assert_eq!(s.status, 200);
    let v = s.json_value();
    assert_eq!(v["state"], "upcoming");
    assert_eq!(v["starts_at"].as_u64(), Some(later.starts_at));
    assert!(v["server_time"].as_u64().unwrap() >= now);
    assert!(v.get("stock").is_none() && v.get("stock_left").is_none());
    assert_eq!(rig.http.get(&rig.url("/api/sales/past"), &[]).await.unwrap().json_value()["state"], "ended");

    // Nothing was committed by any of it.
    assert!(rig.orders_in_redis("later").is_empty() && rig.orders_in_redis("past").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sold_out_switch_both_ways_and_flags_feed() {
    let rig = OriginRig::start("switch", |_| {}).await.unwrap();
    rig.create_sale("sw-1", &SaleSpec::open(5)).await;
    let feed = |rig: &OriginRig| {
        let http = rig.http.clone();
        let url = rig.url("/edge/flags");
        async move { http.get(&url, &[("x-seckill-edge-key", seckill_core::demo::EDGE_KEY)]).await.unwrap().json_value() }
    };
    let v0 = feed(&rig).await["version"].as_u64().unwrap();

    let on = rig.admin("PUT", "/admin/sales/sw-1/sold-out", Some(serde_json::json!({"sold_out": true}))).await;
    assert_eq!(on.status, 200);
    assert_eq!(on.json_value()["sold_out_flag"], true);
    let a = rig.buy("sw-1", "u1").await;
    assert_eq!((a.status.as_u16(), outcome(&a)), (410, "sold_out".into()));
    // The feed shows the switch within 100 ms.
    let t0 = std::time::Instant::now();
    loop {
        let f = feed(&rig).await;
        if f["sales"][0]["sold_out"] == true {
            assert!(f["version"].as_u64().unwrap() > v0);
            break;
        }
        assert!(t0.elapsed() < Duration::from_millis(100), "feed did not show the switch within 100 ms");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rig.http.get(&rig.url("/api/sales/sw-1"), &[]).await.unwrap().json_value()["state"], "sold_out");

    let off = rig.admin("PUT", "/admin/sales/sw-1/sold-out", Some(serde_json::json!({"sold_out": false}))).await;
    assert_eq!(off.json_value()["sold_out_flag"], false);
    assert_eq!(rig.buy("sw-1", "u1").await.status, 201);
    assert_eq!(rig.figures("sw-1").await.sold, 1);

    // The feed is for the edge only.
    assert_eq!(rig.http.get(&rig.url("/edge/flags"), &[]).await.unwrap().status, 401);
    assert_eq!(rig.http.get(&rig.url("/edge/flags"), &[("x-seckill-edge-key", "guess")]).await.unwrap().status, 401);
    // Unknown sku for the switch.
    assert_eq!(rig.admin("PUT", "/admin/sales/nosuch/sold-out", Some(serde_json::json!({"sold_out": true}))).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_order_expires_and_returns_its_unit() {
    let rig = OriginRig::start("expiry", |s| s.expiry_interval = Duration::from_millis(100)).await.unwrap();
    let mut spec = SaleSpec::open(1);
    spec.pay_within_s = 1;
    rig.create_sale("exp-1", &spec).await;
    let won = rig.buy("exp-1", "slow").await;
    assert_eq!(won.status, 201);
    let id = won.json_value()["order_id"].as_str().unwrap().to_owned();
    assert_eq!(outcome(&rig.buy("exp-1", "other").await), "sold_out");
    assert!(rig.figures("exp-1").await.sold_out_flag);

    // After the payment window the unit is back, the flag is down, and both uids may buy.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let f = rig.figures("exp-1").await;
    assert_eq!((f.stock_left, f.sold, f.buyers, f.sold_out_flag), (1, 0, 0, false), "{f:?}");
    assert_eq!(rig.orders_in_redis("exp-1").get(&id).map(|(_, s)| s.as_str()), Some("expired"));
    let pay = rig.as_edge("POST", &format!("/api/orders/{id}/pay"), "slow").await;
    assert_eq!(pay.status, 409, "{}", pay.text());
    assert_eq!(pay.json_value()["state"], "expired");
    let second = rig.buy("exp-1", "other").await;
    assert_eq!(second.status, 201, "{}", second.text());
    let id2 = second.json_value()["order_id"].as_str().unwrap().to_owned();
    assert_ne!(id, id2);

    // Paying in time keeps the order; mine lists both states.
    let paid = rig.as_edge("POST", &format!("/api/orders/{id2}/pay"), "other").await;
    assert_eq!(paid.status, 200);
    assert_eq!(paid.json_value(), serde_json::json!({"order_id": id2, "state": "paid"}));
    assert_eq!(rig.as_edge("POST", &format!("/api/orders/{id2}/pay"), "slow").await.status, 404, "only the owner pays");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let f = rig.figures("exp-1").await;
    assert_eq!((f.stock_left, f.sold, f.paid), (0, 1, 1));
    let mine = rig.as_edge("GET", "/api/orders/mine", "slow").await.json_value();
    assert_eq!(mine["uid"], "slow");
    assert_eq!(mine["orders"][0]["state"], "expired");
    let mine = rig.as_edge("GET", "/api/orders/mine", "other").await.json_value();
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1);
    assert_eq!(mine["orders"][0]["state"], "paid");
    assert_eq!(mine["orders"][0]["order_id"].as_str(), Some(id2.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_flag_survives_expiry() {
    let rig = OriginRig::start("manual", |s| s.expiry_interval = Duration::from_millis(100)).await.unwrap();
    let mut spec = SaleSpec::open(1);
    spec.pay_within_s = 1;
    rig.create_sale("man-1", &spec).await;
    assert_eq!(rig.buy("man-1", "a").await.status, 201);
    rig.admin("PUT", "/admin/sales/man-1/sold-out", Some(serde_json::json!({"sold_out": true}))).await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let f = rig.figures("man-1").await;
    assert_eq!(f.stock_left, 1, "unit returned");
    assert!(f.sold_out_flag && f.sold_out_manual, "the SRE's flag stays until the SRE lowers it");
    assert_eq!(outcome(&rig.buy("man-1", "b").await), "sold_out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_straight_to_the_origin_cannot_buy() {
    let rig = OriginRig::start("bypass", |_| {}).await.unwrap();
    rig.create_sale("by-1", &SaleSpec::open(5)).await;
    let url = rig.url("/api/sales/by-1/orders");
    let ticket = seckill_core::ticket::mint(seckill_core::demo::TICKET_SECRET.as_bytes(), "mallory", seckill_tests::now_ms() / 1000 + 600).unwrap();
    let bearer = format!("Bearer {ticket}");
    let tries: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("x-seckill-uid", "mallory")],
        vec![("authorization", &bearer)],
        vec![("x-seckill-uid", "mallory"), ("x-seckill-edge-key", "dev-edge-keY")],
        vec![("x-seckill-uid", "mallory"), ("x-seckill-edge-key", "")],
        vec![("x-seckill-uid", "mallory"), ("x-seckill-edge-key", "dev-edge-key-and-more")],
        vec![("x-seckill-uid", "bad uid!"), ("x-seckill-edge-key", seckill_core::demo::EDGE_KEY)],
    ];
    for h in tries {
        let a = rig.http.send(hyper::Method::POST, &url, &h, "").await.unwrap();
        assert_eq!((a.status.as_u16(), outcome(&a)), (401, "unauthorized".into()), "{h:?}");
    }
    for path in ["/api/orders/mine"] {
        assert_eq!(rig.http.get(&rig.url(path), &[("x-seckill-uid", "mallory")]).await.unwrap().status, 401);
    }
    assert_eq!(rig.figures("by-1").await.sold, 0);
    assert!(rig.orders_in_redis("by-1").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_needs_the_token_and_rejects_bad_input() {
    let rig = OriginRig::start("admin", |_| {}).await.unwrap();
    let body = serde_json::json!({"stock": 5, "starts_at": 1, "ends_at": 2});
    for auth in [None, Some("Bearer wrong"), Some(seckill_core::demo::ADMIN_TOKEN), Some("Bearer "), Some("Basic dev-admin-token")] {
        let h: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        for (m, p) in [("PUT", "/admin/sales/x"), ("GET", "/admin/sales/x"), ("GET", "/admin/sales"), ("PUT", "/admin/sales/x/sold-out"), ("GET", "/metrics"), ("GET", "/healthz"), ("GET", "/readyz")] {
            let a = rig.http.send(m.parse().unwrap(), &rig.url(p), &h, serde_json::to_vec(&body).unwrap()).await.unwrap();
            assert_eq!(a.status, 401, "{m} {p} with {auth:?}");
        }
    }
    assert_eq!(rig.http.get(&rig.url("/admin/sales"), &[]).await.unwrap().json_value()["sales"], serde_json::Value::Null);
    let skus: Vec<String> = redis::cmd("SMEMBERS").arg("sk:sales").query(&mut rig.redis_connection()).unwrap();
    assert!(skus.is_empty(), "nothing was created without the token");

    // Malformed bodies get a 400 naming the problem.
    let put = |body: &'static str| {
        let http = rig.http.clone();
        let url = rig.url("/admin/sales/bad-1");
        async move { http.send(hyper::Method::PUT, &url, &[("authorization", seckill_core::demo::ADMIN_AUTHORIZATION)], body).await.unwrap() }
    };
    for (body, needle) in [
        ("{", "invalid JSON"),
        ("[]", "invalid JSON"),
        (r#"{"stock":-1,"starts_at":1,"ends_at":2}"#, "invalid JSON"),
        (r#"{"stock":1,"starts_at":5,"ends_at":2}"#, "ends_at"),
        (r#"{"stock":1,"starts_at":1,"ends_at":2,"per_user_limit":0}"#, "per_user_limit"),
        (r#"{"stock":1,"starts_at":1,"ends_at":2,"surprise":true}"#, "unknown field"),
        (r#"{"stock":1}"#, "missing field"),
    ] {
        let a = put(body).await;
        assert_eq!(a.status, 400, "{body}");
        assert!(a.json_value()["error"].as_str().unwrap().contains(needle), "{body}: {}", a.text());
    }
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let a = rig.http.send(hyper::Method::PUT, &rig.url("/admin/sales/bad-1"), &[("authorization", seckill_core::demo::ADMIN_AUTHORIZATION)], deep).await.unwrap();
    assert_eq!(a.status, 400);
    let big = format!(r#"{{"stock":1,"starts_at":1,"ends_at":2,"pad":"{}"}}"#, "x".repeat(100_000));
    let a = rig.http.send(hyper::Method::PUT, &rig.url("/admin/sales/bad-1"), &[("authorization", seckill_core::demo::ADMIN_AUTHORIZATION)], big).await.unwrap();
    assert_eq!(a.status, 413);
    assert_eq!(rig.admin("PUT", "/admin/sales/bad.sku", Some(body.clone())).await.status, 400);
    assert_eq!(rig.admin("GET", "/admin/sales/bad-1", None).await.status, 404);
    let ok = rig.admin("GET", "/readyz", None).await;
    assert_eq!(ok.status, 200);
    assert!(rig.admin("GET", "/metrics", None).await.text().contains("seckill_origin_requests_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buy_rejects_malformed_requests() {
    let rig = OriginRig::start("malformed", |_| {}).await.unwrap();
    rig.create_sale("mal-1", &SaleSpec::open(5)).await;
    let h = [("x-seckill-edge-key", seckill_core::demo::EDGE_KEY), ("x-seckill-uid", "u1")];
    let url = rig.url("/api/sales/mal-1/orders");
    for body in ["{", "nope", &format!("{}{}", "[".repeat(3000), "]".repeat(3000))] {
        let a = rig.http.send(hyper::Method::POST, &url, &h, body.to_owned()).await.unwrap();
        assert_eq!((a.status.as_u16(), outcome(&a)), (400, "invalid".into()), "{}", &body[..body.len().min(20)]);
        assert!(a.json_value()["error"].is_string());
    }
    let a = rig.http.send(hyper::Method::POST, &url, &h, "x".repeat(20_000)).await.unwrap();
    assert_eq!((a.status.as_u16(), outcome(&a)), (400, "invalid".into()));
    // A JSON body is accepted and ignored.
    assert_eq!(rig.http.send(hyper::Method::POST, &url, &h, "{\"qty\":1}").await.unwrap().status, 201);
    // sku tricks
    let long = "a".repeat(10_000);
    for sku in ["..%2F..%2Fetc", "%E6%89%8B%E6%9C%BA", long.as_str(), "a.b"] {
        let a = rig.http.send(hyper::Method::POST, &rig.url(&format!("/api/sales/{sku}/orders")), &h, "").await.unwrap();
        assert_eq!((a.status.as_u16(), outcome(&a)), (400, "invalid".into()), "{}", &sku[..sku.len().min(20)]);
    }
    let a = rig.http.send(hyper::Method::GET, &url, &h, "").await.unwrap();
    assert_eq!(a.status, 405);
    assert_eq!(rig.http.send(hyper::Method::DELETE, &rig.url("/api/sales/mal-1"), &[], "").await.unwrap().status, 405);
    assert_eq!(rig.figures("mal-1").await.sold, 1, "only the one valid attempt committed");
    // Demo login: bad uid and bad JSON.
    let s = rig.http.send(hyper::Method::POST, &rig.url("/api/session"), &[], r#"{"uid":"a b"}"#).await.unwrap();
    assert_eq!(s.status, 400);
    let s = rig.http.send(hyper::Method::POST, &rig.url("/api/session"), &[], r#"{"uid":"alice"}"#).await.unwrap();
    assert_eq!(s.status, 200);
    let t = s.json_value()["ticket"].as_str().unwrap().to_owned();
    assert!(seckill_core::ticket::verify(&[seckill_core::demo::TICKET_SECRET.as_bytes()], &t, seckill_tests::now_ms() / 1000).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_login_can_be_turned_off() {
    let rig = OriginRig::start("nologin", |s| s.demo_login = false).await.unwrap();
    let s = rig.http.send(hyper::Method::POST, &rig.url("/api/session"), &[], r#"{"uid":"alice"}"#).await.unwrap();
    assert_eq!(s.status, 404);
}

/// Redis killed (SIGKILL) in the middle of a crowd: `busy` while it is down, recovery by itself
/// when it is back, every `won` still in Redis (AOF, appendfsync always), nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crash_mid_sale_gives_busy_and_loses_nothing() {
    let mut rig = OriginRig::start("crash", |_| {}).await.unwrap();
    rig.create_sale("crash-1", &SaleSpec::open(300)).await;
    let mut answers: Vec<(String, seckill_origin::client::Answer)> = Vec::new();
    let wave = |rig: &OriginRig, from: usize, n: usize| {
        let uids: Vec<String> = (from..from + n).map(|i| format!("c{i}")).collect();
        let http = rig.http.clone();
        let url = rig.url("/api/sales/crash-1/orders");
        async move {
            stream::iter(uids)
                .map(|uid| {
                    let http = http.clone();
                    let url = url.clone();
                    async move {
                        let a = http.send(hyper::Method::POST, &url, &[("x-seckill-edge-key", seckill_core::demo::EDGE_KEY), ("x-seckill-uid", &uid)], "").await.unwrap();
                        (uid, a)
                    }
                })
                .buffer_unordered(100)
                .collect::<Vec<_>>()
                .await
        }
    };
    answers.extend(wave(&rig, 0, 100).await);
    rig.redis.kill9();
    let started = std::time::Instant::now();
    let down = wave(&rig, 100, 50).await;
    assert!(down.iter().all(|(_, a)| a.status == 503 && outcome(a) == "busy" && a.header("retry-after").is_some()), "busy while down");
    assert!(started.elapsed() < Duration::from_secs(5), "busy answered within a bounded time");
    assert_eq!(rig.admin("GET", "/readyz", None).await.status, 503);
    rig.redis.restart().unwrap();
    // Recovers by itself.
    let t0 = std::time::Instant::now();
    loop {
        let a = rig.buy("crash-1", "probe").await;
        if a.status == 201 || a.status == 200 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "origin did not recover: {}", a.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    answers.extend(wave(&rig, 100, 150).await);
    let in_redis = rig.orders_in_redis("crash-1");
    let won: Vec<&(String, seckill_origin::client::Answer)> = answers.iter().filter(|(_, a)| a.status == 201).collect();
    for (uid, a) in &won {
        let id = a.json_value()["order_id"].as_str().unwrap().to_owned();
        assert_eq!(in_redis.get(&id).map(|(u, _)| u), Some(uid), "a won answer lost its order in the crash");
    }
    let owners: Vec<&String> = in_redis.values().map(|(u, _)| u).collect();
    let distinct: HashSet<&&String> = owners.iter().collect();
    assert_eq!(owners.len(), distinct.len(), "no uid holds two orders");
    assert_eq!(in_redis.len(), won.len() + 1, "every order has its won answer (+ the probe)");
    let f = rig.figures("crash-1").await;
    assert_eq!(f.sold as usize, in_redis.len());
    assert_eq!(f.stock_left + f.sold, 300);
}

/// Redis paused (SIGSTOP): the origin answers `busy` within its bound, and the scripts Redis runs
/// once resumed commit nothing for those attempts (the fence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_gives_busy_and_commits_nothing_late() {
    let rig = OriginRig::start("pause", |_| {}).await.unwrap();
    rig.create_sale("pause-1", &SaleSpec::open(50)).await;
    rig.redis.pause();
    let t0 = std::time::Instant::now();
    let answers: Vec<_> = stream::iter(0..20)
        .map(|i| {
            let rig = &rig;
            async move { rig.buy("pause-1", &format!("p{i}")).await }
        })
        .buffer_unordered(20)
        .collect()
        .await;
    let took = t0.elapsed();
    rig.redis.resume();
    assert!(answers.iter().all(|a| outcome(a) == "busy"), "all busy while paused");
    // The bound is the origin's Redis timeout (300 ms) plus scheduling; 2.5 s leaves room for a
    // loaded CI machine while still failing an origin that waits for Redis to come back.
    assert!(took < Duration::from_millis(2_500), "busy within the bound, took {took:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rig.orders_in_redis("pause-1").is_empty(), "a late script committed an attempt already answered busy");
    assert_eq!(rig.figures("pause-1").await.stock_left, 50);
    assert_eq!(rig.buy("pause-1", "p0").await.status, 201, "recovered after resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_in_batches_sells_each_unit_only_within_its_batch() {
    let rig = OriginRig::start("batches", |_| {}).await.unwrap();
    let now = seckill_tests::now_ms();
    let (start, batch2, end) = (now - 500, now + 2_500, now + 3_600_000);
    let spec = serde_json::json!({"stock": 5, "starts_at": start, "ends_at": end,
        "batches": [{"at": start, "stock": 3}, {"at": batch2, "stock": 2}]});
    let a = rig.admin("PUT", "/admin/sales/b-1", Some(spec.clone())).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let f: seckill_origin::store::SaleFigures = a.json().unwrap();
    assert_eq!((f.stock_total, f.released, f.next_batch_at, f.batches.len()), (5, 3, Some(batch2), 2));
    // Bad batches: a clear 400, nothing changed.
    for (bad, why) in [
        (serde_json::json!({"stock": 6, "starts_at": start, "ends_at": end, "batches": [{"at": start, "stock": 3}, {"at": batch2, "stock": 2}]}), "adds up to 5, but stock says 6"),
        (serde_json::json!({"stock": 5, "starts_at": start, "ends_at": end, "batches": [{"at": start + 1, "stock": 5}]}), "the first batch must be at starts_at"),
        (serde_json::json!({"stock": 5, "starts_at": start, "ends_at": end, "batches": [{"at": start, "stock": 5, "when": 1}]}), "unknown field"),
    ] {
        let a = rig.admin("PUT", "/admin/sales/b-1", Some(bad)).await;
        assert_eq!(a.status, 400, "{}", a.text());
        assert!(a.text().contains(why), "{why}: {}", a.text());
    }

    // Batch 1: 3 units for 8 uids at once; the rest is sold out until batch 2, whose start the
    // public status names.
    let uids: Vec<String> = (0..8).map(|i| format!("a{i}")).collect();
    let first: Vec<String> = futures::future::join_all(uids.iter().map(|u| rig.buy("b-1", u))).await.iter().map(outcome).collect();
    assert_eq!(first.iter().filter(|o| *o == "won").count(), 3, "{first:?}");
    assert_eq!(first.iter().filter(|o| *o == "sold_out").count(), 5, "{first:?}");
    tokio::time::sleep(Duration::from_millis(150)).await; // one flags refresh
    let st = rig.http.get(&rig.url("/api/sales/b-1"), &[]).await.unwrap().json_value();
    assert_eq!((st["state"].as_str(), st["next_batch_at"].as_u64()), (Some("sold_out"), Some(batch2)), "{st}");
    let feed = rig.http.get(&rig.url("/edge/flags"), &[("x-seckill-edge-key", seckill_core::demo::EDGE_KEY)]).await.unwrap().json_value();
    assert_eq!(feed["sales"][0]["sold_out_until"].as_u64(), Some(batch2), "{feed}");
    assert_eq!(outcome(&rig.buy("b-1", "late").await), "sold_out");

    // Batch 2: its 2 units, from its start, with no write at the start.
    let wait = batch2.saturating_sub(seckill_tests::now_ms()) + 50;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let st = rig.http.get(&rig.url("/api/sales/b-1"), &[]).await.unwrap().json_value();
    assert_eq!((st["state"].as_str(), st.get("next_batch_at")), (Some("on_sale"), None), "{st}");
    let uids: Vec<String> = (0..6).map(|i| format!("b{i}")).collect();
    let second: Vec<String> = futures::future::join_all(uids.iter().map(|u| rig.buy("b-1", u))).await.iter().map(outcome).collect();
    assert_eq!(second.iter().filter(|o| *o == "won").count(), 2, "{second:?}");
    assert_ne!(outcome(&rig.buy("b-1", "a0").await), "won", "a batch-1 winner cannot win again");
    let f = rig.figures("b-1").await;
    assert_eq!((f.sold, f.stock_left, f.released, f.next_batch_at, f.state.as_str()), (5, 0, 5, None, "sold_out"));

    // Every order was made within its batch: 3 before batch 2's start, 2 after.
    let mut c = rig.redis_connection();
    let raw: HashMap<String, String> = redis::cmd("HGETALL").arg("sk:{b-1}:orders").query(&mut c).unwrap();
    let created: Vec<u64> = raw.values().map(|r| r.split(' ').nth(2).unwrap().parse().unwrap()).collect();
    assert_eq!(created.iter().filter(|t| **t < batch2).count(), 3, "{created:?}");
    assert_eq!(created.iter().filter(|t| **t >= batch2).count(), 2, "{created:?}");
}
