//! What makes a reused app untrustworthy, watched while it renders: a main-frame navigation
//! (a reload or Grafana sending the page to its login), a 401/403 answer from Grafana's
//! origin (the new render key refused), an uncaught exception or a `console.error`.

use std::sync::{Arc, Mutex};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::network::EventResponseReceived;
use chromiumoxide::cdp::browser_protocol::page::EventFrameNavigated;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use futures::StreamExt;

use super::Fallback;

/// What went wrong on the page while a reused app rendered.
#[derive(Default)]
struct Anomalies(Mutex<Option<&'static str>>);

impl Anomalies {
    fn note(&self, what: &'static str) {
        if let Ok(mut first) = self.0.lock() {
            first.get_or_insert(what);
        }
    }

    fn first(&self) -> Option<&'static str> {
        self.0.lock().ok().and_then(|f| *f)
    }
}

/// Watches the page for what makes a reused app untrustworthy, until dropped.
pub(super) struct AnomalyWatch {
    seen: Arc<Anomalies>,
    task: tokio::task::JoinHandle<()>,
}

impl AnomalyWatch {
    pub(super) async fn start(page: &Page, origin: String) -> Result<AnomalyWatch, Fallback> {
        let lost = |_| Fallback("cdp");
        let mut navigated = page
            .event_listener::<EventFrameNavigated>()
            .await
            .map_err(lost)?;
        let mut responses = page
            .event_listener::<EventResponseReceived>()
            .await
            .map_err(lost)?;
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .map_err(lost)?;
        let mut thrown = page
            .event_listener::<EventExceptionThrown>()
            .await
            .map_err(lost)?;
        let seen = Arc::new(Anomalies::default());
        let out = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(ev) = navigated.next() => if ev.frame.parent_id.is_none() {
                        out.note("navigated");
                    },
                    Some(ev) = responses.next() => {
                        let status = ev.response.status;
                        if (status == 401 || status == 403) && ev.response.url.starts_with(&origin) {
                            out.note("key-refused");
                        }
                    }
                    Some(ev) = console.next() => if ev.r#type == ConsoleApiCalledType::Error {
                        out.note("console-error");
                    },
                    Some(_) = thrown.next() => out.note("script-error"),
                    else => return,
                }
            }
        });
        Ok(AnomalyWatch { seen, task })
    }

    pub(super) fn check(&self) -> Result<(), Fallback> {
        match self.seen.first() {
            Some(what) => Err(Fallback(what)),
            None => Ok(()),
        }
    }
}

impl Drop for AnomalyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
