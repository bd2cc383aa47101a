// The sale page's shell: network, storage and DOM for the Rust page logic (crate seckill-page).
// It decides nothing: every event goes to `App` (Rust, compiled to Wasm) with Date.now(), and the
// page is redrawn from the view it returns. `cargo xtask build` rewrites the two relative names
// below to the content-hashed asset names.
import init, { App, solve_nonce } from "./glue.js";

const WASM = new URL("./app.wasm", import.meta.url);
const TICKET = "seckill-ticket";
const LANG = "seckill-lang";
const $ = (id) => document.getElementById(id);

// Storage can throw (privacy modes, disabled cookies): the page then just forgets.
const store = {
  get(area, k) { try { return area.getItem(k); } catch { return null; } },
  set(area, k, v) { try { area.setItem(k, v); } catch { /* not kept */ } },
  del(area, k) { try { area.removeItem(k); } catch { /* nothing kept */ } },
};

let app;
let session = null;      // {uid, ticket, expires_at}
let statusTimer = 0;
let tickTimer = 0;
let lastResult = "";
let lastProblem = null;

function loadSession() {
  try { return JSON.parse(store.get(sessionStorage, TICKET) || "null"); } catch { return null; }
}

function auth() {
  return session ? { Authorization: `Bearer ${session.ticket}` } : {};
}

function setText(id, text) {
  const el = $(id);
  if (el && el.textContent !== text) el.textContent = text;
}

function applyTexts() {
  for (const [key, text] of JSON.parse(app.fixed_texts())) {
    for (const el of document.querySelectorAll(`[data-i18n="${key}"]`)) el.textContent = text;
    if (key === "lang_switch") $("lang").textContent = text;
    if (key === "lang_switch_label") $("lang").setAttribute("aria-label", text);
  }
  document.documentElement.lang = app.lang();
  $("lang").lang = app.lang() === "en" ? "zh-CN" : "en";
}

function render() {
  const v = JSON.parse(app.view(Date.now()));
  setText("title", v.title);
  setText("price", v.price || "");
  setText("state", v.state);
  $("state").dataset.kind = v.state_kind;
  setText("countdown", v.countdown);
  const buy = $("buy");
  setText("buy", v.button);
  buy.disabled = !v.button_enabled;
  buy.setAttribute("aria-busy", String(v.button_busy));
  if (v.result !== lastResult) {          // the live region speaks only when it changes
    lastResult = v.result;
    $("result").textContent = v.result;
  }
  $("result").dataset.kind = v.result_kind;
  $("order").hidden = !v.order_id;
  setText("order-id", v.order_id || "");
  setText("pay-deadline", v.pay_deadline);
  const pay = $("pay");
  pay.hidden = !v.pay_visible;
  pay.disabled = !v.pay_enabled;
  pay.setAttribute("aria-busy", String(v.pay_busy));
  setText("pay", v.pay_label);
  $("signin").hidden = Boolean(v.uid);
  $("signed-in").hidden = !v.uid;
  setText("signed-in-as", v.signed_in_as || "");
  setText("signin-error", v.signin_error || "");
  if (v.problem && v.problem !== lastProblem) console.warn("seckill:", v.problem);
  lastProblem = v.problem;
}

function tick() {
  render();
  clearTimeout(tickTimer);
  tickTimer = setTimeout(tick, Math.max(20, app.next_tick_in(Date.now())));
}

function apply(effectsJson) {
  for (const effect of JSON.parse(effectsJson || "[]")) {
    if (effect === "load_status") loadStatus();
    else if (effect === "load_orders") loadOrders();
    else if (effect === "forget_ticket") { session = null; store.del(sessionStorage, TICKET); }
    else if (effect === "focus_pay") setTimeout(() => { render(); if (!$("pay").hidden) $("pay").focus(); }, 0);
    else if (effect === "solve_challenge") setTimeout(solveChallenge, 0);
  }
  render();
}

async function loadStatus() {
  clearTimeout(statusTimer);
  const sku = app.sku();
  if (!sku) return;
  const sent = Date.now();
  try {
    const r = await fetch(`/api/sales/${encodeURIComponent(sku)}`);
    apply(app.status_loaded(sent, Date.now(), r.status, await r.text()));
  } catch (e) {
    app.status_failed(String(e));
    render();
  }
  const next = app.next_status_in(Date.now());
  if (next >= 0) statusTimer = setTimeout(loadStatus, next);
}

async function loadOrders() {
  if (!session) return;
  try {
    const r = await fetch("/api/orders/mine", { headers: auth(), cache: "no-store" });
    apply(app.orders_loaded(r.status, await r.text()));
  } catch (e) {
    console.warn("seckill: orders:", String(e));
  }
}

// The sale's challenge, solved in slices of hashes between frames so the page stays responsive;
// solved, the buy goes again by itself (the shopper already clicked).
const SOLVE_SLICE = 20000;
function solveChallenge() {
  if (app.solve_some(SOLVE_SLICE)) { render(); buy(); }
  else setTimeout(solveChallenge, 0);
}

// Diagnostics (the page test measures solve times in the browser with it): solve `n` fresh
// random challenges of `bits` and return each one's time in ms.
window.seckillSolveTimes = (n, bits) => {
  const times = [];
  for (let i = 0; i < n; i++) {
    const seed = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    const t0 = performance.now();
    if (solve_nonce(seed, bits) === undefined) return null;
    times.push(performance.now() - t0);
  }
  return times;
};

async function buy() {
  if (!app.click(Date.now())) { render(); return; }
  render();                                   // grey, with progress, at once
  try {
    const proof = app.proof();
    const headers = proof ? { ...auth(), "Seckill-Proof": proof } : auth();
    const r = await fetch(`/api/sales/${encodeURIComponent(app.sku())}/orders`, { method: "POST", headers });
    apply(app.buy_answered(Date.now(), r.status, r.headers.get("retry-after") ?? undefined, await r.text()));
  } catch (e) {
    apply(app.buy_failed(String(e)));
  }
}

async function pay() {
  const id = app.pay_click(Date.now());
  if (!id) { render(); return; }
  render();
  try {
    const r = await fetch(`/api/orders/${encodeURIComponent(id)}/pay`, { method: "POST", headers: auth() });
    apply(app.pay_answered(r.status, await r.text()));
  } catch (e) {
    apply(app.pay_failed(String(e)));
  }
}

async function signIn(event) {
  event.preventDefault();
  const body = app.sign_in_body($("uid").value);
  if (body === undefined) { render(); $("uid").focus(); return; }
  try {
    const r = await fetch("/api/session", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    const answer = JSON.parse(app.signed_in(r.status, await r.text()));
    if (answer.session) {
      session = answer.session;
      store.set(sessionStorage, TICKET, JSON.stringify(session));
    }
    apply(JSON.stringify(answer.effects));
    if (answer.session) $("buy").focus();
  } catch (e) {
    app.sign_in_failed(String(e));
    render();
  }
}

function signOut() {
  session = null;
  store.del(sessionStorage, TICKET);
  app.sign_out();
  render();
  $("uid").focus();
}

async function main() {
  await init({ module_or_path: WASM });
  const languages = navigator.languages?.length ? [...navigator.languages] : [navigator.language || "en"];
  app = new App(location.pathname, location.search, $("catalogue")?.textContent || "{}", languages, store.get(localStorage, LANG) ?? undefined);
  session = loadSession();
  if (session && !app.restore_session(String(session.uid), Number(session.expires_at), Date.now())) {
    session = null;
    store.del(sessionStorage, TICKET);
  }
  applyTexts();
  $("buy").addEventListener("click", buy);
  $("pay").addEventListener("click", pay);
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("lang").addEventListener("click", () => { store.set(localStorage, LANG, app.toggle_lang()); applyTexts(); render(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) loadStatus(); });
  tick();
  await loadStatus();
  loadOrders();
  document.body.dataset.ready = "true";
}

main().catch((e) => {
  console.error("seckill: the page could not start:", e);
  $("result").textContent = "This page needs a browser with WebAssembly. / 本页需要支持 WebAssembly 的浏览器。";
});
