//! grender: a fast, drop-in replacement for Grafana's image renderer.
//!
//! Grafana sends `GET /render?url=…&renderKey=…`; grender opens that page in a warm, supervised
//! Chromium, waits until every panel has really drawn, and answers with a PNG, a PDF or a CSV.
//! See `docs/architecture.md` for the request path on one screen and which module may use which.
//!
//! # The request path, top to bottom
//!
//! | Layer | Module | Its one job |
//! |---|---|---|
//! | adapters | [`api`] | HTTP: routes, token header, status codes, the connection loop, HTTPS |
//! | | [`plugin`] | gRPC: Grafana's renderer-plugin protocol (Grafana 7–11) |
//! | | [`cli`] | the command line: `server`, `render`, `report`, `doctor`, `healthcheck`, `print-config` |
//! | | [`report`] | scheduled e-mail reports: schedules, SQLite run history, SMTP, report PDFs |
//! | core | [`service`] | transport-neutral: tokens, parsing, the counted render, the metrics page |
//! | | `render` | one deadline, a queue slot, coalescing of identical requests |
//! | | [`page`] | one render in one tab: emulate, guard, navigate, readiness, capture (CDP) |
//! | | [`browser`] | one supervised Chromium, its pool of isolated contexts, recycling |
//!
//! Beside the path, imported by it and importing none of it:
//! [`request`] (the typed request, its parser and its deadline), [`output`] (pure byte
//! transforms: pictures, PDF pages, CSV names), [`config`] (every option, checked at start-up),
//! [`error`] (why a render failed, with one [`error::ErrorCode`] per class), and the small
//! `metrics`, `stage`, `redact`, `cdp_health` and `startup` modules.

pub mod api;
#[doc(hidden)]
pub mod browser;
pub(crate) mod cdp_health;
pub mod cli;
pub mod config;
pub mod error;
pub(crate) mod metrics;
pub mod output;
#[doc(hidden)]
pub mod page;
pub mod plugin;
pub(crate) mod redact;
pub(crate) mod render;
pub mod report;
pub mod request;
pub mod service;
pub(crate) mod stage;
pub(crate) mod startup;

pub use service::Service;
