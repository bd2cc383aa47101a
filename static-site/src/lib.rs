//! `seckill-page`: the sale page's client logic, in Rust, for the browser.
//!
//! The page is the first layer that stops the crowd: a button that is off until the start (counted
//! down on the server's clock), off while a request is in flight, and that sends at most one
//! request per throttle window however often it is clicked — the same rule the edge filter
//! applies, from `seckill-core`. Everything that decides lives here as plain functions and types
//! that take `now_ms`, unit-tested natively (`cargo test -p seckill-page`); the browser gets the
//! same code compiled to `wasm32-unknown-unknown` behind a thin wasm-bindgen layer, and a small
//! JS shell (`static-site/public/app.js`) does the I/O and draws the view.
//!
//! - [`page`]: the state machine (status, sign-in, buy, pay) and the [`page::View`] it draws.
//! - [`clock`]: the server's clock from `server_time` (offset over the round trip).
//! - [`i18n`]: Chinese and English texts, the language from the browser or the switch.
//! - [`catalogue`]: names and prices from the static `catalogue.json`.
//! - [`location`]: the sku from `/s/{sku}` or `/?sku={sku}`.
//! - `web` (wasm32 only): the wasm-bindgen exports the shell calls.

pub mod catalogue;
pub mod clock;
pub mod i18n;
pub mod location;
pub mod page;

#[cfg(target_arch = "wasm32")]
mod web;

pub use i18n::Lang;
pub use page::{Effect, Page, Session, View};
