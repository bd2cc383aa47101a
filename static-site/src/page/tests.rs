//! The page's rules, event by event, with explicit times.

use super::*;

const CATALOGUE: &str = r#"{"currency":"CNY","items":{"phone-1":{"name":{"en":"Phone One","zh":"手机一号"},"price":399900}}}"#;
/// The server's clock at the first status answer.
const T: u64 = 1_700_000_000_000;
/// The shopper's clock is ten minutes slow.
const SKEW: u64 = 600_000;

fn local(server_ms: u64) -> u64 {
    server_ms - SKEW
}

fn status(state: &str, starts_at: u64, ends_at: u64, server_time: u64) -> String {
    format!(r#"{{"sku":"phone-1","state":"{state}","starts_at":{starts_at},"ends_at":{ends_at},"server_time":{server_time}}}"#)
}

/// A page for phone-1 whose sale starts at T+10 s and ends at T+1 h, loaded at server time T.
fn page() -> Page {
    let mut p = Page::new("/s/phone-1", "", CATALOGUE, &["en-US".to_owned()], None);
    p.status_loaded(local(T) - 20, local(T) + 20, 200, &status("upcoming", T + 10_000, T + 3_600_000, T));
    p
}

fn signed_in() -> Page {
    let mut p = page();
    assert!(p.restore_session("alice", T + 3_600_000, local(T)));
    p
}

/// On sale, signed in, at server time T+10 s.
fn on_sale() -> (Page, u64) {
    (signed_in(), local(T + 10_000))
}

fn won(p: &mut Page, now: u64) -> Vec<Effect> {
    assert!(p.click(now));
    p.buy_answered(now + 30, 201, None, r#"{"outcome":"won","order_id":"phone-1.1","sku":"phone-1","uid":"alice"}"#)
}

#[test]
fn countdown_runs_on_the_servers_clock() {
    let p = signed_in();
    let v = p.view(local(T));
    assert_eq!(v.title, "Phone One");
    assert_eq!(v.price.as_deref(), Some("¥3,999.00"));
    assert_eq!(v.state_kind, "upcoming");
    assert_eq!(v.countdown, "Starts in 00:10", "ten seconds on the server's clock, whatever the local one says");
    assert_eq!(p.view(local(T + 3_500)).countdown, "Starts in 00:07");
    assert!(!v.button_enabled);
    assert_eq!(v.button, "Not started yet");
}

#[test]
fn the_button_turns_on_at_the_start_and_not_a_millisecond_before() {
    let p = signed_in();
    let before = p.view(local(T + 9_999));
    assert!(!before.button_enabled);
    assert_eq!(before.countdown, "Starts in 00:01");
    let at = p.view(local(T + 10_000));
    assert!(at.button_enabled);
    assert_eq!(at.button, "Buy now");
    assert_eq!(at.state_kind, "on_sale");
    assert_eq!(at.countdown, "Ends in 59:50");
    // The shell redraws right when a countdown changes, and right at the start.
    assert_eq!(p.next_tick_in(local(T + 9_400)), 600);
    assert_eq!(p.next_tick_in(local(T + 3_250)), 750, "starts in 6.75 s: shows 7 until 6 s are left");
    assert_eq!(p.next_tick_in(local(T + 3_000)), 1_000);
}

#[test]
fn redraws_follow_every_countdown() {
    let (mut p, now) = on_sale();
    // On sale: the end (T + 1 h) is on a whole second of the start, so ticks are a second apart.
    assert_eq!(p.next_tick_in(now + 200), 800);
    // A "try again in" wait that ends off the second boundary is followed too.
    assert!(p.click(now + 200));
    p.buy_answered(now + 450, 503, Some("1"), r#"{"outcome":"busy"}"#);
    assert_eq!(p.next_tick_in(now + 450), 550, "the end's countdown changes first");
    assert_eq!(p.next_tick_in(now + 1_000), 200, "then the window opened at +200, ending at +5200");
    // With nothing counting down, once a second.
    let q = Page::new("/", "", CATALOGUE, &[], None);
    assert_eq!(q.next_tick_in(123), 1_000);
}

#[test]
fn clicks_before_the_start_send_nothing() {
    let mut p = signed_in();
    assert!(!p.click(local(T + 9_999)));
    assert!(!p.view(local(T + 9_999)).button_busy);
}

#[test]
fn signed_out_shoppers_are_asked_to_sign_in() {
    let mut p = page();
    let v = p.view(local(T + 10_000));
    assert!(!v.button_enabled);
    assert_eq!(v.button, "Sign in to buy");
    assert!(!p.click(local(T + 10_000)));
}

#[test]
fn ten_rapid_clicks_send_one_request() {
    let (mut p, now) = on_sale();
    let sent = (0..10).filter(|i| p.click(now + i * 15)).count();
    assert_eq!(sent, 1);
    let v = p.view(now + 150);
    assert!(v.button_busy, "grey with progress while in flight");
    assert!(!v.button_enabled);
    assert_eq!(v.button, "Sending…");
}

#[test]
fn one_request_per_window_even_after_an_answer() {
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    p.buy_answered(now + 40, 403, None, r#"{"outcome":"not_started","starts_at":0,"ends_at":0}"#);
    // The answer came back quickly; the window (5 s, the edge's) still holds.
    assert!(!p.click(now + 100));
    assert!(!p.click(now + 4_999));
    let v = p.view(now + 2_000);
    assert_eq!(v.button, "Try again in 3 s");
    assert!(!v.button_enabled);
    assert!(p.view(now + 5_000).button_enabled);
    assert!(p.click(now + 5_000));
}

#[test]
fn busy_waits_for_retry_after() {
    let mut p = signed_in().with_window_ms(1_000);
    let now = local(T + 10_000);
    assert!(p.click(now));
    let effects = p.buy_answered(now + 10, 503, Some("3"), r#"{"outcome":"busy","retry_after_ms":1000,"error":"x"}"#);
    assert!(effects.is_empty());
    let v = p.view(now + 10);
    assert_eq!(v.result, "The shop is busy and nothing was bought. Try again when the button comes back.");
    assert_eq!(v.button, "Try again in 3 s", "the header wins: whole seconds, as HTTP says");
    assert!(!p.click(now + 3_009));
    assert!(p.view(now + 3_010).button_enabled);
    assert!(p.click(now + 3_010));
}

#[test]
fn throttled_without_a_header_uses_the_body() {
    let mut p = signed_in().with_window_ms(100);
    let now = local(T + 10_000);
    assert!(p.click(now));
    p.buy_answered(now, 429, None, r#"{"outcome":"throttled","retry_after_ms":2500}"#);
    assert_eq!(p.view(now).result, "Too many tries. Try again when the button comes back.");
    assert!(!p.click(now + 2_499));
    assert!(p.click(now + 2_500));
}

#[test]
fn a_proxy_error_page_still_honours_retry_after() {
    let mut p = signed_in().with_window_ms(100);
    let now = local(T + 10_000);
    assert!(p.click(now));
    p.buy_answered(now, 503, Some("2"), "<html>upstream unavailable</html>");
    assert!(p.view(now).problem.is_some_and(|e| e.contains("buy")));
    assert!(!p.click(now + 1_999));
    assert!(p.click(now + 2_000));
}

#[test]
fn a_win_shows_the_order_and_pays_within_the_deadline() {
    let (mut p, now) = on_sale();
    let effects = won(&mut p, now);
    assert_eq!(effects, vec![Effect::LoadOrders, Effect::FocusPay]);
    let v = p.view(now + 30);
    assert_eq!(v.result, "You got one! Your order is phone-1.1");
    assert_eq!(v.result_kind, "good");
    assert_eq!(v.order_id.as_deref(), Some("phone-1.1"));
    assert_eq!(v.button, "You have one");
    assert!(!v.button_enabled);
    assert!(v.pay_visible && v.pay_enabled);
    // The deadline comes from orders/mine (server time).
    let pay_by = T + 10_000 + 900_000;
    p.orders_loaded(200, &format!(r#"{{"uid":"alice","orders":[{{"order_id":"phone-1.1","sku":"phone-1","state":"pending","created_at":{},"pay_by":{pay_by}}}]}}"#, T + 10_000));
    assert_eq!(p.view(now + 1_000).pay_deadline, "Pay within 14:59");
    assert_eq!(p.pay_click(now + 2_000).as_deref(), Some("phone-1.1"));
    assert_eq!(p.pay_click(now + 2_001), None, "one payment in flight");
    let v = p.view(now + 2_001);
    assert!(v.pay_busy && !v.pay_enabled);
    assert_eq!(v.pay_label, "Paying…");
    p.pay_answered(200, r#"{"order_id":"phone-1.1","state":"paid"}"#);
    let v = p.view(now + 3_000);
    assert_eq!(v.order_state, Some("paid"));
    assert!(!v.pay_visible);
    assert_eq!(v.result, "Paid. Thank you!");
    assert_eq!(v.pay_deadline, "Paid. Thank you!");
    assert!(!p.click(now + 60_000), "a uid holding an order does not buy again");
}

#[test]
fn the_pay_button_goes_away_when_the_deadline_passes() {
    let (mut p, now) = on_sale();
    won(&mut p, now);
    let pay_by = T + 20_000;
    p.orders_loaded(200, &format!(r#"{{"uid":"alice","orders":[{{"order_id":"phone-1.1","sku":"phone-1","state":"pending","created_at":1,"pay_by":{pay_by}}}]}}"#));
    assert_eq!(p.view(local(pay_by - 1)).pay_deadline, "Pay within 00:01");
    let v = p.view(local(pay_by));
    assert!(!v.pay_enabled);
    assert_eq!(v.pay_deadline, "The time to pay has passed.");
    assert_eq!(p.pay_click(local(pay_by)), None);
}

#[test]
fn paying_too_late_puts_the_unit_back() {
    let (mut p, now) = on_sale();
    won(&mut p, now);
    assert!(p.pay_click(now + 100).is_some());
    let effects = p.pay_answered(409, r#"{"state":"expired"}"#);
    assert_eq!(effects, vec![Effect::LoadStatus]);
    let v = p.view(now + 200);
    assert_eq!(v.order_state, Some("expired"));
    assert_eq!(v.result, "The time to pay has passed; the unit went back on sale.");
    assert!(p.view(now + 5_000).button_enabled, "the uid may try again");
}

#[test]
fn already_won_shows_the_same_order() {
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    p.buy_answered(now + 5, 200, None, r#"{"outcome":"already_won","order_id":"phone-1.7","sku":"phone-1","uid":"alice"}"#);
    let v = p.view(now + 5);
    assert_eq!(v.result, "You already have one. Your order is phone-1.7");
    assert_eq!(v.order_id.as_deref(), Some("phone-1.7"));
}

#[test]
fn an_order_from_before_a_reload_is_shown() {
    let (mut p, now) = on_sale();
    p.orders_loaded(200, r#"{"uid":"alice","orders":[
        {"order_id":"tv-1.3","sku":"tv-1","state":"pending","created_at":5,"pay_by":9},
        {"order_id":"phone-1.2","sku":"phone-1","state":"expired","created_at":1,"pay_by":2},
        {"order_id":"phone-1.9","sku":"phone-1","state":"paid","created_at":3,"pay_by":4}]}"#);
    let v = p.view(now);
    assert_eq!(v.order_id.as_deref(), Some("phone-1.9"), "the live order of this sku, not another sku's or an expired one");
    assert_eq!(v.order_state, Some("paid"));
    assert_eq!(v.button, "You have one");
}

#[test]
fn only_expired_orders_leave_the_button_on() {
    let (mut p, now) = on_sale();
    p.orders_loaded(200, r#"{"uid":"alice","orders":[{"order_id":"phone-1.2","sku":"phone-1","state":"expired","created_at":1,"pay_by":2}]}"#);
    let v = p.view(now);
    assert_eq!(v.order_id, None);
    assert!(v.button_enabled);
}

#[test]
fn sold_out_answer_and_status() {
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    p.buy_answered(now + 5, 410, None, r#"{"outcome":"sold_out"}"#);
    let v = p.view(now + 10_000);
    assert_eq!(v.state, "Sold out");
    assert_eq!(v.state_kind, "sold_out");
    assert_eq!(v.button, "Sold out");
    assert!(!v.button_enabled);
    assert_eq!(v.result, "Sold out: every unit is taken. Nothing was charged.");
    assert_eq!(v.result_kind, "bad");
    assert_eq!(v.countdown, "");

    let mut q = Page::new("/", "?sku=phone-1", CATALOGUE, &[], None);
    q.status_loaded(100, 100, 200, &status("sold_out", T - 1_000, T + 1_000, T));
    let v = q.view(100);
    assert_eq!(v.state, "Sold out");
    assert!(!v.button_enabled);
    // A later status that says on sale again (an unpaid order expired) turns it back on.
    q.status_loaded(200, 200, 200, &status("on_sale", T - 1_000, T + 1_000, T + 100));
    assert_eq!(q.view(300).state_kind, "on_sale");
}

#[test]
fn ended_answer_and_status() {
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    p.buy_answered(now + 5, 403, None, r#"{"outcome":"ended","starts_at":1,"ends_at":2}"#);
    let v = p.view(now + 5);
    assert_eq!((v.state.as_str(), v.button.as_str(), v.result.as_str()), ("Sale ended", "Sale ended", "The sale has ended."));
    assert_eq!(p.next_status_in(now + 5), None, "nothing to poll after the end");

    let mut q = Page::new("/s/phone-1", "", CATALOGUE, &[], None);
    q.status_loaded(0, 0, 200, &status("ended", 1, 2, T));
    assert_eq!(q.view(0).state_kind, "ended");
}

#[test]
fn not_started_answer_resyncs() {
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    let effects = p.buy_answered(now + 5, 403, None, &format!(r#"{{"outcome":"not_started","starts_at":{},"ends_at":{}}}"#, T + 20_000, T + 3_600_000));
    assert_eq!(effects, vec![Effect::LoadStatus]);
    assert_eq!(p.next_status_in(now + 5), Some(0));
    let v = p.view(now + 5);
    assert_eq!(v.result, "The sale has not started yet. Wait for the countdown.");
    assert_eq!(v.countdown, "Starts in 00:10", "the start the server named");
    p.status_loaded(now + 10, now + 20, 200, &status("upcoming", T + 20_000, T + 3_600_000, T + 10_015));
    assert_ne!(p.next_status_in(now + 20), Some(0));
}

#[test]
fn unauthorized_forgets_the_ticket() {
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    let effects = p.buy_answered(now + 5, 401, None, r#"{"outcome":"unauthorized","error":"expired ticket"}"#);
    assert_eq!(effects, vec![Effect::ForgetTicket]);
    let v = p.view(now + 5);
    assert_eq!(v.uid, None);
    assert_eq!(v.signed_in_as, None);
    assert_eq!(v.result, "Your sign-in has expired. Please sign in again.");
    assert_eq!(v.button, "Sign in to buy");
}

#[test]
fn unknown_sku() {
    let mut p = Page::new("/s/nope", "", CATALOGUE, &[], None);
    p.status_loaded(0, 0, 404, r#"{"outcome":"unknown_sku"}"#);
    let v = p.view(0);
    assert_eq!(v.title, "nope");
    assert_eq!(v.price, None);
    assert_eq!(v.state, "There is no such sale.");
    assert_eq!(v.button, "Unavailable");
    assert!(!v.button_enabled);
}

#[test]
fn no_sku_in_the_url() {
    let mut p = Page::new("/", "", CATALOGUE, &[], None);
    assert_eq!(p.sku(), None);
    assert_eq!(p.next_status_in(0), None);
    assert!(!p.click(0));
    assert!(p.view(0).state.contains("/s/phone-1"));
}

#[test]
fn the_shop_unreachable_then_back() {
    let mut p = Page::new("/s/phone-1", "", CATALOGUE, &[], None);
    assert_eq!(p.view(0).state, "Loading…");
    p.status_failed("TypeError: Failed to fetch");
    assert_eq!(p.view(0).state, "Cannot reach the shop. Retrying…");
    assert_eq!(p.next_status_in(0), Some(3_000));
    p.status_loaded(local(T), local(T), 200, &status("upcoming", T + 60_000, T + 120_000, T));
    assert_eq!(p.view(local(T)).state, "Starting soon");
    // A failed refresh later keeps what was known.
    p.status_loaded(local(T) + 1, local(T) + 2, 502, "bad gateway");
    assert_eq!(p.view(local(T) + 3).state, "Starting soon");
    assert!(p.view(local(T) + 3).problem.is_some_and(|e| e.contains("502")));
}

#[test]
fn status_polling_is_rare_before_the_start() {
    let p = page();
    // 10 s before the start: once just after the start (to confirm), not every second.
    assert_eq!(p.next_status_in(local(T)), Some(11_500));
    let mut far = Page::new("/s/phone-1", "", CATALOGUE, &[], None);
    far.status_loaded(0, 0, 200, &status("upcoming", T + 3_600_000, T + 7_200_000, T));
    assert_eq!(far.next_status_in(0), Some(30_000));
    assert_eq!(p.next_status_in(local(T + 10_000)), Some(10_000), "during the sale");
}

#[test]
fn sign_in_checks_the_uid_and_keeps_the_session() {
    let mut p = page();
    assert_eq!(p.sign_in_body("  "), None);
    assert_eq!(p.view(0).signin_error.as_deref(), Some("A user id is 1 to 64 letters, digits, _ or -."));
    assert_eq!(p.sign_in_body("bad id!"), None);
    assert_eq!(p.sign_in_body(" alice ").as_deref(), Some(r#"{"uid":"alice"}"#));
    assert_eq!(p.view(0).signin_error, None);
    let (session, effects) = p.signed_in(200, r#"{"uid":"alice","ticket":"v1.alice.9.sig","expires_at":9000}"#);
    assert_eq!(session, Some(Session { uid: "alice".into(), ticket: "v1.alice.9.sig".into(), expires_at: 9000 }));
    assert_eq!(effects, vec![Effect::LoadOrders]);
    assert_eq!(p.view(0).uid.as_deref(), Some("alice"));
    assert_eq!(p.view(0).signed_in_as.as_deref(), Some("Signed in as alice"));
    let (session, _) = p.signed_in(404, r#"{"error":"no such route"}"#);
    assert_eq!(session, None);
    assert_eq!(p.view(0).signin_error.as_deref(), Some("Sign-in failed. Try again."));
}

#[test]
fn an_expired_session_is_not_restored() {
    let mut p = page();
    assert!(!p.restore_session("alice", T - 1, local(T)), "expiry is checked on the server's clock");
    assert!(!p.restore_session("not valid", T + 1_000, local(T)));
    assert_eq!(p.uid(), None);
}

#[test]
fn another_uid_starts_afresh() {
    let (mut p, now) = on_sale();
    won(&mut p, now);
    assert!(p.restore_session("bob", T + 3_600_000, now + 100));
    let v = p.view(now + 100);
    assert_eq!(v.order_id, None);
    assert!(v.button_enabled, "bob has no order and no window yet");
}

#[test]
fn a_lost_request_asks_for_orders_and_keeps_the_window() {
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    assert_eq!(p.buy_failed("TypeError: Failed to fetch"), vec![Effect::LoadOrders]);
    let v = p.view(now + 100);
    assert_eq!(v.result, "Your request did not get through. Try again when the button comes back.");
    assert!(!p.click(now + 100));
    assert!(p.click(now + 5_000));
}

#[test]
fn chinese() {
    let mut p = Page::new("/s/phone-1", "", CATALOGUE, &["zh-CN".to_owned(), "en".to_owned()], None);
    p.status_loaded(local(T), local(T), 200, &status("upcoming", T + 10_000, T + 3_600_000, T));
    let v = p.view(local(T));
    assert_eq!(v.lang, Lang::Zh);
    assert_eq!(v.title, "手机一号");
    assert_eq!(v.state, "即将开始");
    assert_eq!(v.countdown, "距开始还有 00:10");
    assert_eq!(v.button, "尚未开始");
    p.set_lang(Lang::En);
    assert_eq!(p.view(local(T)).button, "Not started yet");
    let chosen = Page::new("/s/phone-1", "", CATALOGUE, &["en".to_owned()], Some("zh-CN"));
    assert_eq!(chosen.lang(), Lang::Zh, "the switch wins over the browser");
}

#[test]
fn view_json_is_what_the_shell_reads() {
    let p = signed_in();
    let json = serde_json::to_value(p.view(local(T))).expect("view serialises");
    for key in ["lang", "title", "price", "state_kind", "state", "countdown", "button", "button_enabled", "button_busy", "result", "result_kind",
        "uid", "signed_in_as", "signin_error", "order_id", "order_state", "pay_visible", "pay_enabled", "pay_busy", "pay_label", "pay_deadline", "problem"] {
        assert!(json.get(key).is_some(), "view has `{key}`");
    }
    assert_eq!(json["lang"], "en");
}

#[test]
fn a_broken_catalogue_still_shows_the_sale() {
    let p = Page::new("/s/phone-1", "", "{not json", &[], None);
    let v = p.view(0);
    assert_eq!(v.title, "phone-1");
    assert!(v.problem.is_some_and(|e| e.contains("catalogue")));
}

#[test]
fn a_challenge_is_solved_then_the_buy_goes_again_with_its_proof() {
    use seckill_core::challenge::{ChallengeKey, PROOF_HEADER};
    let key = ChallengeKey::new(b"edge-key");
    let c = key.issue("alice", "phone-1", T + 10_000, 10);
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    assert_eq!(p.proof(), None);
    let body = format!(r#"{{"outcome":"challenge","sku":"phone-1","challenge":{{"seed":"{}","bits":10}},"error":"solve it"}}"#, c.seed);
    assert_eq!(p.buy_answered(now + 20, 428, None, &body), vec![Effect::SolveChallenge]);
    // While solving: busy, and clicks send nothing.
    assert!(p.view(now + 30).button_busy);
    assert!(!p.click(now + 40));
    let mut slices = 0;
    while !p.solve_some(64) {
        slices += 1;
        assert!(slices < 100_000, "a 10-bit challenge is solved");
    }
    let proof = p.proof().expect("solved").to_owned();
    assert_eq!(key.check("alice", "phone-1", T + 10_000, 10, Some(&proof)), Ok(()), "the edge's own check accepts it ({PROOF_HEADER})");
    // Solved: the buy goes again at once (nothing was recorded against the uid), with the proof.
    assert!(!p.view(now + 50).button_busy);
    assert!(p.click(now + 50), "the page's own window does not hold the retry back");
    p.buy_answered(now + 80, 201, None, r#"{"outcome":"won","order_id":"phone-1.1","sku":"phone-1","uid":"alice"}"#);
    assert_eq!(p.proof(), Some(proof.as_str()), "kept for later buys of this sale");
    p.sign_out();
    assert_eq!(p.proof(), None, "another shopper solves their own");
}

#[test]
fn an_unreadable_challenge_is_a_problem_not_a_loop() {
    let (mut p, now) = on_sale();
    assert!(p.click(now));
    assert!(p.buy_answered(now + 20, 428, None, r#"{"outcome":"challenge"}"#).is_empty());
    assert!(p.view(now + 30).problem.is_some());
    assert!(p.solve_some(10), "nothing to solve");
}

#[test]
fn a_sold_out_batch_counts_down_to_the_next_one_and_reopens_on_the_servers_clock() {
    let next = T + 60_000;
    let mut p = signed_in();
    let body = format!(r#"{{"sku":"phone-1","state":"sold_out","starts_at":{},"ends_at":{},"server_time":{T},"next_batch_at":{next}}}"#, T - 10_000, T + 3_600_000);
    p.status_loaded(local(T), local(T), 200, &body);
    let v = p.view(local(T + 1_000));
    assert_eq!((v.state_kind, v.state.as_str()), ("sold_out", "This batch is sold out. More units go on sale soon."));
    assert_eq!(v.countdown, "Next batch in 00:59");
    assert!(!v.button_enabled);
    assert_eq!(p.next_status_in(local(T + 1_000)), Some(30_000));
    assert_eq!(p.next_status_in(local(T + 40_000)), Some(21_500), "just after the next batch's start, to confirm it");
    // The next batch opens on the page's own clock, without waiting for a status.
    let v = p.view(local(next));
    assert_eq!((v.state_kind, v.countdown.as_str()), ("on_sale", "Ends in 59:00"));
    assert!(v.button_enabled);
    // Sold out again in the last batch: no next batch, plain sold out.
    let last = format!(r#"{{"sku":"phone-1","state":"sold_out","starts_at":{},"ends_at":{},"server_time":{next}}}"#, T - 10_000, T + 3_600_000);
    p.status_loaded(local(next), local(next), 200, &last);
    let v = p.view(local(next + 1_000));
    assert_eq!((v.state.as_str(), v.countdown.as_str()), ("Sold out", ""));
}
