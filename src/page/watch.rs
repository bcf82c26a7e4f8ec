//! What a page is doing, for error messages: requests still in flight and uncaught
//! JavaScript exceptions, collected from CDP events while the render runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent,
};
use chromiumoxide::cdp::js_protocol::runtime::EventExceptionThrown;
use futures::StreamExt;

#[derive(Default)]
struct Seen {
    pending: HashMap<String, String>,
    exceptions: Vec<String>,
}

/// Collects while alive; stops when dropped.
pub struct PageWatch {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl PageWatch {
    /// Starts listening on `page` (before navigation, to see everything).
    pub async fn start(page: &Page) -> Option<PageWatch> {
        let mut sent = page.event_listener::<EventRequestWillBeSent>().await.ok()?;
        let mut finished = page.event_listener::<EventLoadingFinished>().await.ok()?;
        let mut failed = page.event_listener::<EventLoadingFailed>().await.ok()?;
        let mut thrown = page.event_listener::<EventExceptionThrown>().await.ok()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let out = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let update: Box<dyn FnOnce(&mut Seen) + Send> = tokio::select! {
                    Some(ev) = sent.next() => {
                        let (id, url) = (ev.request_id.inner().clone(), path_of(&ev.request.url));
                        Box::new(move |s| { s.pending.insert(id, url); })
                    }
                    Some(ev) = finished.next() => {
                        let id = ev.request_id.inner().clone();
                        Box::new(move |s| { s.pending.remove(&id); })
                    }
                    Some(ev) = failed.next() => {
                        let id = ev.request_id.inner().clone();
                        Box::new(move |s| { s.pending.remove(&id); })
                    }
                    Some(ev) = thrown.next() => {
                        let d = &ev.exception_details;
                        let text = d.exception.as_ref().and_then(|e| e.description.clone()).unwrap_or_else(|| d.text.clone());
                        let first = text.lines().next().unwrap_or("").to_string();
                        Box::new(move |s| if s.exceptions.len() < 3 { s.exceptions.push(first) })
                    }
                    else => return,
                };
                if let Ok(mut s) = out.lock() {
                    update(&mut s);
                }
            }
        });
        Some(PageWatch { seen, task })
    }

    /// Up to five requests still in flight, as origin + path (queries can hold secrets).
    pub fn pending(&self) -> Vec<String> {
        let Ok(s) = self.seen.lock() else {
            return Vec::new();
        };
        let mut urls: Vec<String> = s
            .pending
            .values()
            .filter(|u| u.starts_with("http"))
            .cloned()
            .collect();
        urls.sort();
        urls.dedup();
        urls.truncate(5);
        urls
    }

    /// The first uncaught exceptions of the page.
    pub fn exceptions(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|s| s.exceptions.clone())
            .unwrap_or_default()
    }
}

impl Drop for PageWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn path_of(url: &str) -> String {
    crate::request::without_secrets(url).unwrap_or_default()
}
