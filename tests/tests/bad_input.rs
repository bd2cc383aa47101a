//! The bad-input catalogue: every hostile or broken input tried at the edge (Envoy + filter) and
//! straight at the origin, with the answer it must get. None of them may change stock or orders.
//! The table printed at the end is the one in the README's security section.

use std::time::Duration;

use seckill_tests::raw_http::{send, send_slowly, RawAnswer};
use seckill_tests::stack_rig::{StackOptions, StackRig};

const SKU: &str = "bad-1";

fn ticket(uid: &str, exp_s: u64) -> String {
    seckill_core::ticket::mint(seckill_core::demo::TICKET_SECRET.as_bytes(), uid, exp_s).unwrap()
}

fn buy_request(host: &str, path: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

struct Row {
    input: String,
    at: &'static str,
    answer: String,
}

/// Check an answer: `status` one of `statuses`; the body's outcome equal to `outcome` when given.
fn expect(rows: &mut Vec<Row>, input: &str, at: &'static str, a: &RawAnswer, statuses: &[u16], outcome: Option<&str>) {
    let status = a.status();
    assert!(status.map(|s| statuses.contains(&s)).unwrap_or(false), "{input} at {at}: expected {statuses:?}, got {status:?}: {}", a.text.chars().take(300).collect::<String>());
    let got = serde_json::from_str::<serde_json::Value>(a.body()).ok().and_then(|v| v["outcome"].as_str().map(str::to_owned));
    if let Some(o) = outcome {
        assert_eq!(got.as_deref(), Some(o), "{input} at {at}: {}", a.text.chars().take(300).collect::<String>());
    }
    assert_eq!(a.responses(), 1, "{input} at {at}: one request, one response");
    let by = a.text.lines().find_map(|l| l.strip_prefix("x-seckill-by: ")).map(|b| format!(", by {}", b.trim())).unwrap_or_default();
    rows.push(Row { input: input.to_owned(), at, answer: format!("{}{}{by}", status.unwrap_or(0), got.map(|o| format!(" {o}")).unwrap_or_default()) });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_broken_inputs_get_clear_answers_and_change_nothing() {
    let rig = StackRig::start("bad-input", StackOptions::default()).await.unwrap();
    rig.open_sale(SKU, 10).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // the edge has the flags
    let edge = rig.edge_addr();
    let origin = rig.origin_addr;
    let host = edge.to_string();
    let t = Duration::from_secs(3);
    let now_s = seckill_tests::now_ms() / 1000;
    let good = ticket("mallory", now_s + 600);
    let path = format!("/api/sales/{SKU}/orders");
    let mut rows = Vec::new();
    let auth = |t: &str| format!("Authorization: Bearer {t}\r\n");

    // --- tickets (edge) -------------------------------------------------------------------
    let forged = good.replace("mallory", "alice0x");
    let expired = ticket("mallory", now_s - 1);
    let truncated = &good[..good.len() - 5];
    let oversized = format!("{good}{}", "A".repeat(10_000));
    let wrong_version = good.replacen("v1.", "v2.", 1);
    for (name, header) in [
        ("no ticket", String::new()),
        ("forged ticket (uid swapped)", auth(&forged)),
        ("expired ticket", auth(&expired)),
        ("truncated ticket", auth(truncated)),
        ("oversized ticket (10 KB)", auth(&oversized)),
        ("wrong-version ticket (v2)", auth(&wrong_version)),
        ("not a bearer token", "Authorization: Basic bWFsbG9yeTpwdw==\r\n".to_owned()),
    ] {
        let a = send(edge, &buy_request(&host, &path, &header, ""), t).await.unwrap();
        expect(&mut rows, name, "edge", &a, &[401], Some("unauthorized"));
    }
    let mut non_utf8 = b"POST ".to_vec();
    non_utf8.extend_from_slice(path.as_bytes());
    non_utf8.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer v1.\xff\xfe.1.\xc3\r\nContent-Length: 0\r\n\r\n");
    let a = send(edge, &non_utf8, t).await.unwrap();
    expect(&mut rows, "non-UTF-8 ticket bytes", "edge", &a, &[400, 401], None);

    // --- headers the client must not set (edge) ---------------------------------------------
    let a = send(edge, &buy_request(&host, &path, &format!("x-seckill-uid: alice\r\nx-seckill-edge-key: {}\r\n", seckill_core::demo::EDGE_KEY), ""), t).await.unwrap();
    expect(&mut rows, "client x-seckill-uid + x-seckill-edge-key, no ticket", "edge", &a, &[401], Some("unauthorized"));
    let a = send(edge, &buy_request(&host, &path, &format!("{}x-seckill-uid: alice\r\nX-Seckill-Uid: bob\r\n", auth(&good)), ""), t).await.unwrap();
    expect(&mut rows, "valid ticket + client x-seckill-uid: alice", "edge", &a, &[201], Some("won"));
    assert!(a.body().contains("\"uid\":\"mallory\""), "the order went to the ticket's uid: {}", a.body());

    // --- sizes and bodies (edge) -----------------------------------------------------------------
    // Each case below from its own uid: the edge lets one request per uid and window through.
    let n = std::sync::atomic::AtomicUsize::new(0);
    let other_auth = || auth(&ticket(&format!("trudy{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)), now_s + 600));
    let big_header = format!("{}Cookie: {}\r\n", other_auth(), "c".repeat(20_000));
    let a = send(edge, &buy_request(&host, &path, &big_header, ""), t).await.unwrap();
    expect(&mut rows, "oversized header (20 KB cookie)", "edge", &a, &[431], None);
    let a = send(edge, &buy_request(&host, &path, &other_auth(), &"x".repeat(100_000)), t).await.unwrap();
    expect(&mut rows, "oversized body (100 KB)", "edge", &a, &[413], None);
    let a = send(edge, &buy_request(&host, &path, &other_auth(), "{not json"), t).await.unwrap();
    expect(&mut rows, "invalid JSON body", "edge", &a, &[400], Some("invalid"));
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let a = send(edge, &buy_request(&host, &path, &other_auth(), &deep), t).await.unwrap();
    expect(&mut rows, "JSON nested 5,000 deep", "edge", &a, &[400], Some("invalid"));

    // --- skus and paths (edge) -------------------------------------------------------------------
    for (name, p, statuses) in [
        ("sku with ../ (encoded slashes)", "/api/sales/..%2F..%2Fadmin/orders".to_owned(), &[400u16, 404][..]),
        ("sku with ../ (dot segments)", "/api/sales/../../admin/sales/bad-1".to_owned(), &[404][..]),
        ("sku in unicode (手机)", "/api/sales/%E6%89%8B%E6%9C%BA/orders".to_owned(), &[400][..]),
        ("sku of 10 KB", format!("/api/sales/{}/orders", "a".repeat(10_000)), &[400, 414, 431][..]),
        ("admin API through the edge", "/admin/sales/bad-1".to_owned(), &[404][..]),
        ("flags feed through the edge", "/edge/flags".to_owned(), &[404][..]),
    ] {
        let a = send(edge, &buy_request(&host, &p, &other_auth(), ""), t).await.unwrap();
        expect(&mut rows, name, "edge", &a, statuses, None);
    }
    for m in ["PUT", "DELETE", "PATCH", "GET"] {
        let req = format!("{m} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{}Content-Length: 0\r\n\r\n", other_auth());
        let a = send(edge, req.as_bytes(), t).await.unwrap();
        expect(&mut rows, &format!("{m} on the buy route"), "edge", &a, &[405], None);
    }

    // --- request smuggling through Envoy ---------------------------------------------------------
    let smuggled_buy = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n{}Content-Length: 0\r\n\r\n", auth(&ticket("victim", now_s + 600)));
    let cl_te = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled_buy}",
        other_auth()
    );
    let a = send(edge, cl_te.as_bytes(), t).await.unwrap();
    expect(&mut rows, "Content-Length + Transfer-Encoding (CL.TE smuggling)", "edge", &a, &[400], None);
    let two_cl = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n{}Content-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled_buy}", other_auth(), smuggled_buy.len());
    let a = send(edge, two_cl.as_bytes(), t).await.unwrap();
    expect(&mut rows, "two different Content-Lengths", "edge", &a, &[400], None);
    let bad_chunk = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{}Transfer-Encoding: chunked\r\n\r\nzz\r\n{smuggled_buy}", other_auth());
    let a = send(edge, bad_chunk.as_bytes(), t).await.unwrap();
    expect(&mut rows, "malformed chunked body", "edge", &a, &[400], None);

    // --- slow client (edge) ------------------------------------------------------------------
    let started = std::time::Instant::now();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n");
    let a = send_slowly(edge, &[head.as_bytes(), b"X-Slow: 1\r\n", b"X-Slow: 2\r\n"], Duration::from_millis(3_000), Duration::from_secs(9)).await.unwrap();
    assert!(a.closed, "Envoy closed the slow client");
    assert!(started.elapsed() < Duration::from_secs(9), "closed by the header timeout");
    rows.push(Row { input: "slow client (headers trickled over 6 s)".into(), at: "edge", answer: format!("{}, connection closed by the 5 s header timeout (seen at {:.1} s)", a.status().map(|s| s.to_string()).unwrap_or_else(|| "no answer".into()), started.elapsed().as_secs_f32()) });

    // --- straight to the origin -----------------------------------------------------------
    let ohost = origin.to_string();
    for (name, headers) in [
        ("buy without the edge key", "x-seckill-uid: mallory\r\n".to_owned()),
        ("buy with a wrong edge key", "x-seckill-uid: mallory\r\nx-seckill-edge-key: guess\r\n".to_owned()),
        ("buy with a valid ticket but no edge", auth(&good)),
    ] {
        let a = send(origin, &buy_request(&ohost, &path, &headers, ""), t).await.unwrap();
        expect(&mut rows, name, "origin", &a, &[401], Some("unauthorized"));
    }
    let key = &format!("x-seckill-uid: zed\r\nx-seckill-edge-key: {}\r\n", seckill_core::demo::EDGE_KEY);
    let a = send(origin, &buy_request(&ohost, &path, key, &"x".repeat(100_000)), t).await.unwrap();
    expect(&mut rows, "oversized body (100 KB)", "origin", &a, &[400], Some("invalid"));
    let a = send(origin, &buy_request(&ohost, &path, key, &deep), t).await.unwrap();
    expect(&mut rows, "JSON nested 5,000 deep", "origin", &a, &[400], Some("invalid"));
    let a = send(origin, &buy_request(&ohost, &format!("/api/sales/{}/orders", "a".repeat(10_000)), key, ""), t).await.unwrap();
    expect(&mut rows, "sku of 10 KB", "origin", &a, &[400, 431], None);
    for (name, headers) in [("admin without a token", String::new()), ("admin with a wrong token", "Authorization: Bearer guess\r\n".to_owned())] {
        let req = format!("PUT /admin/sales/{SKU}/sold-out HTTP/1.1\r\nHost: {ohost}\r\nConnection: close\r\n{headers}Content-Length: 17\r\n\r\n{{\"sold_out\":true}}");
        let a = send(origin, req.as_bytes(), t).await.unwrap();
        expect(&mut rows, name, "origin", &a, &[401], None);
    }
    let req = format!("PUT /admin/sales/{SKU} HTTP/1.1\r\nHost: {ohost}\r\nConnection: close\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n{deep}", seckill_core::demo::ADMIN_AUTHORIZATION, deep.len());
    let a = send(origin, req.as_bytes(), t).await.unwrap();
    expect(&mut rows, "admin JSON nested 5,000 deep", "origin", &a, &[400], None);
    let req = format!("GET /edge/flags HTTP/1.1\r\nHost: {ohost}\r\nConnection: close\r\n\r\n");
    let a = send(origin, req.as_bytes(), t).await.unwrap();
    expect(&mut rows, "flags feed without the edge key", "origin", &a, &[401], None);

    // --- nothing changed but the one legitimate purchase ---------------------------------------
    tokio::time::sleep(Duration::from_millis(300)).await;
    let orders = rig.orders_in_redis(SKU).unwrap();
    let owners: Vec<&String> = orders.values().map(|(u, _)| u).collect();
    assert_eq!(owners, vec![&"mallory".to_owned()], "only mallory's own, legitimate order exists");
    let f = rig.figures(SKU).await.unwrap();
    assert_eq!((f["stock_left"].as_u64(), f["sold"].as_u64(), f["sold_out_flag"].as_bool()), (Some(9), Some(1), Some(false)));

    println!("| input | at | answer |\n|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.input, r.at, r.answer);
    }
}
