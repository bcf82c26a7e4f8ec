//! How well grender's CDP client understands the Chromium it drives.
//!
//! chromiumoxide's protocol types are generated from an older protocol than the installed
//! Chromium speaks, so some messages do not parse (e.g. Chromium 156's
//! `Network.requestWillBeSentExtraInfo`, whose `clientSecurityState` gained a field the
//! types do not know). The client then logs the whole raw message — which carries the
//! `renderKey` cookie — and drops it. This module turns those log events into a counter
//! by CDP method (`grender_cdp_unparsed_messages_total{method}`) and one warning per
//! method, and keeps the raw text out of every log. Navigations that only finished
//! because grender watched the page itself (page/navigate.rs) are counted here too.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use prometheus::{IntCounter, IntCounterVec, Opts};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};

/// CDP messages the client could not parse, by method.
pub(crate) static UNPARSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "grender_cdp_unparsed_messages_total",
            "CDP messages from Chromium the CDP client could not parse, by method.",
        ),
        &["method"],
    )
    .expect("a valid metric")
});

/// Navigations finished by the page's own lifecycle events after the client's wait hung.
pub(crate) static NAVIGATION_RESCUES: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "grender_cdp_navigation_rescues_total",
        "Navigations that loaded while the CDP client's own wait for them did not end.",
    )
    .expect("a valid metric")
});

/// Methods already warned about (one warning each per process).
static WARNED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

/// The CDP method named in a raw protocol message, or `unknown`. Only a method name made
/// of protocol characters is returned, so nothing else of the message can get out.
pub(crate) fn method_of(raw: &str) -> String {
    let message: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
    match message["method"].as_str() {
        Some(m)
            if !m.is_empty()
                && m.len() <= 80
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') =>
        {
            m.to_string()
        }
        _ => "unknown".into(),
    }
}

/// Counts one unparsed message and warns once for its method.
pub(crate) fn note_unparsed(raw: &str) {
    let method = method_of(raw);
    UNPARSED.with_label_values(&[&method]).inc();
    let first = WARNED
        .lock()
        .map(|mut w| w.insert(method.clone()))
        .unwrap_or(false);
    if first && KNOWN_HARMLESS.contains(&method.as_str()) {
        tracing::debug!(
            method = %method,
            "Chromium sent a CDP event the CDP client cannot parse; grender does not use it (counted in grender_cdp_unparsed_messages_total)"
        );
    } else if first {
        tracing::warn!(
            method = %method,
            "Chromium sent a CDP message the CDP client cannot parse; it is dropped (counted in grender_cdp_unparsed_messages_total, not logged further)"
        );
    }
}

/// Events that newer Chromium sends in a shape the CDP client's types do not know, and that
/// grender never listens to (docs/adr/0010): counted, but no warning to alarm anyone (`grender
/// doctor` printed it on every run).
const KNOWN_HARMLESS: &[&str] = &["Network.requestWillBeSentExtraInfo"];

/// Where chromiumoxide reports a message it could not parse, with the raw text in `msg`
/// (at debug level; its handler then warns once more, without the text).
const PARSE_ERRORS_TARGET: &str = "chromiumoxide::conn::raw_ws::parse_errors";

/// A tracing layer that sees the CDP client's parse-failure events and counts them;
/// nothing is printed (the formatting layer filters `chromiumoxide` out).
pub(crate) struct UnparsedMessages;

impl<S: tracing::Subscriber> Layer<S> for UnparsedMessages {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != PARSE_ERRORS_TARGET {
            return;
        }
        let mut raw = RawMessage(String::new());
        event.record(&mut raw);
        note_unparsed(&raw.0);
    }
}

/// [`UnparsedMessages`] with the filter it needs: the client's warnings, whatever the
/// log level. Add it to every subscriber whose other layers filter the client out.
pub(crate) fn layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    UnparsedMessages.with_filter(tracing_subscriber::filter::filter_fn(|m| {
        m.target() == PARSE_ERRORS_TARGET
    }))
}

/// The `msg` field: the raw protocol message.
struct RawMessage(String);

impl Visit for RawMessage {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "msg" {
            self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "msg" {
            self.0 = value.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn the_method_is_read_and_nothing_else() {
        let raw = r#"{"method":"Network.requestWillBeSentExtraInfo","params":{"headers":{"Cookie":"renderKey=secret"}}}"#;
        assert_eq!(method_of(raw), "Network.requestWillBeSentExtraInfo");
        assert_eq!(
            method_of(r#"{"method": "Page.x\"renderKey=secret"}"#),
            "unknown"
        );
        assert_eq!(method_of(r#"{"id":3,"result":{}}"#), "unknown");
        assert_eq!(method_of(r#"{"method":"renderKey=secret"}"#), "unknown");
    }

    #[test]
    fn parse_failures_logged_by_the_client_are_counted_by_method() {
        let method = "Test.unparsedEvent";
        let before = UNPARSED.with_label_values(&[method]).get();
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            // As chromiumoxide's connection reports them.
            let msg =
                format!(r#"{{"method":"{method}","params":{{"cookie":"renderKey=s3cret"}}}}"#);
            tracing::debug!(target: "chromiumoxide::conn::raw_ws::parse_errors", msg, "Failed to parse raw WS message x");
            tracing::debug!(target: "chromiumoxide::conn::raw_ws::parse_errors", msg, "Failed to parse raw WS message x");
            // The handler's warning about the same message, and other crates', are not counted.
            tracing::warn!(target: "chromiumoxide::handler", "WS Invalid message: x");
            tracing::debug!(target: "grender", msg, "Failed to parse raw WS message x");
        });
        assert_eq!(UNPARSED.with_label_values(&[method]).get() - before, 2);
    }
}
