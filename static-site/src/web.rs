//! The wasm-bindgen layer: what `app.js` calls. Thin on purpose — it converts JS numbers and
//! strings to the types of [`crate::page`] and the results to JSON text the shell parses.
//!
//! Times come in as JS numbers (`Date.now()`); answers as status, header and body text. Nothing
//! here can panic on input from the network: bad JSON becomes a state of the page, never a trap.

use wasm_bindgen::prelude::*;

use crate::page::{Effect, Page};

/// JS numbers are f64; times and statuses are whole and non-negative.
fn ms(t: f64) -> u64 {
    if t.is_finite() && t > 0.0 { t as u64 } else { 0 }
}

fn status(s: f64) -> u16 {
    if s.is_finite() && (0.0..=999.0).contains(&s) { s as u16 } else { 0 }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // The view and effects are plain structs of strings, numbers and booleans.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn effects(e: Vec<Effect>) -> String {
    json(&e)
}

/// The page, as the shell sees it.
#[wasm_bindgen]
pub struct App {
    page: Page,
}

#[wasm_bindgen]
impl App {
    /// `location.pathname`, `location.search`, the catalogue JSON from the HTML,
    /// `navigator.languages`, and the language the shopper chose earlier (or `undefined`).
    #[wasm_bindgen(constructor)]
    pub fn new(path: &str, query: &str, catalogue_json: &str, languages: Vec<String>, chosen: Option<String>) -> App {
        App { page: Page::new(path, query, catalogue_json, &languages, chosen.as_deref()) }
    }

    pub fn sku(&self) -> Option<String> {
        self.page.sku().map(str::to_owned)
    }

    /// The current language tag (`en` / `zh-CN`).
    pub fn lang(&self) -> String {
        self.page.lang().tag().to_owned()
    }

    /// Switch to the other language; returns its tag.
    pub fn toggle_lang(&mut self) -> String {
        self.page.set_lang(self.page.lang().other());
        self.lang()
    }

    /// `[[key, text], ...]` for the elements marked `data-i18n`.
    pub fn fixed_texts(&self) -> String {
        json(&self.page.lang().fixed_texts())
    }

    pub fn status_loaded(&mut self, sent_ms: f64, received_ms: f64, http_status: f64, body: &str) -> String {
        effects(self.page.status_loaded(ms(sent_ms), ms(received_ms), status(http_status), body))
    }

    pub fn status_failed(&mut self, why: &str) {
        self.page.status_failed(why)
    }

    /// Ms until the next status refresh, or -1 for none.
    pub fn next_status_in(&self, now_ms: f64) -> f64 {
        self.page.next_status_in(ms(now_ms)).map(|d| d as f64).unwrap_or(-1.0)
    }

    /// Ms until the view changes by itself.
    pub fn next_tick_in(&self, now_ms: f64) -> f64 {
        self.page.next_tick_in(ms(now_ms)) as f64
    }

    /// The body for `POST /api/session`, or `undefined` for a bad uid.
    pub fn sign_in_body(&mut self, uid: &str) -> Option<String> {
        self.page.sign_in_body(uid)
    }

    /// `{"session": {uid, ticket, expires_at} | null, "effects": [...]}`.
    pub fn signed_in(&mut self, http_status: f64, body: &str) -> String {
        let (session, effects) = self.page.signed_in(status(http_status), body);
        json(&serde_json::json!({ "session": session, "effects": effects }))
    }

    pub fn sign_in_failed(&mut self, why: &str) {
        self.page.sign_in_failed(why)
    }

    pub fn restore_session(&mut self, uid: &str, expires_at: f64, now_ms: f64) -> bool {
        self.page.restore_session(uid, ms(expires_at), ms(now_ms))
    }

    pub fn sign_out(&mut self) {
        self.page.sign_out()
    }

    /// True: send the buy request now.
    pub fn click(&mut self, now_ms: f64) -> bool {
        self.page.click(ms(now_ms))
    }

    pub fn buy_answered(&mut self, now_ms: f64, http_status: f64, retry_after: Option<String>, body: &str) -> String {
        effects(self.page.buy_answered(ms(now_ms), status(http_status), retry_after.as_deref(), body))
    }

    /// Work on the sale's challenge for `tries` nonces; true when solved (then buy again).
    pub fn solve_some(&mut self, tries: f64) -> bool {
        self.page.solve_some(tries.max(1.0) as u64)
    }

    /// The `seckill-proof` header value for the next buy, or `undefined`.
    pub fn proof(&self) -> Option<String> {
        self.page.proof().map(str::to_owned)
    }

    pub fn buy_failed(&mut self, why: &str) -> String {
        effects(self.page.buy_failed(why))
    }

    pub fn orders_loaded(&mut self, http_status: f64, body: &str) -> String {
        effects(self.page.orders_loaded(status(http_status), body))
    }

    /// The order id to pay, or `undefined`.
    pub fn pay_click(&mut self, now_ms: f64) -> Option<String> {
        self.page.pay_click(ms(now_ms))
    }

    pub fn pay_answered(&mut self, http_status: f64, body: &str) -> String {
        effects(self.page.pay_answered(status(http_status), body))
    }

    pub fn pay_failed(&mut self, why: &str) -> String {
        effects(self.page.pay_failed(why))
    }

    /// The view at `now_ms`, as JSON.
    pub fn view(&self, now_ms: f64) -> String {
        json(&self.page.view(ms(now_ms)))
    }
}

/// Solve one challenge given by its hex seed and difficulty (the whole search); the nonce, or
/// `undefined` for a malformed seed. For diagnostics: the page itself solves in slices.
#[wasm_bindgen]
pub fn solve_nonce(seed_hex: &str, bits: u32) -> Option<f64> {
    let seed = seckill_core::challenge::seed_from_hex(seed_hex)?;
    seckill_core::challenge::solve(&seed, bits, 0, u64::MAX).map(|n| n as f64)
}
