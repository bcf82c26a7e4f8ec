//! grender's integration tests, as one test binary (one link of chromiumoxide, tonic and axum
//! instead of one per file). Each module is one concern; [`common`] is the shared harness:
//! a Grafana stand-in and a grender with a real Chromium on loopback, the skip-without-Chromium
//! rule, and the `/proc` helpers.
//!
//! Run one module with `cargo test --test grender MODULE::` (or `cargo nextest run -E 'test(/^MODULE::/)'`).

mod architecture;
mod budget;
mod cli;
mod common;
mod csv;
mod deploy;
mod docs;
mod errors;
mod formats;
mod frontend;
mod isolation;
mod lifecycle;
mod limits;
mod load;
mod metrics;
mod pdf;
mod plugin;
mod properties;
mod render;
mod reports;
mod reuse;
mod sandbox;
mod secrets;
mod tall;
mod tls;
