//! Loading the target URL in the leased tab, finished by the page's own lifecycle events.
//!
//! chromiumoxide's `goto` waits in its frame manager for a "load" it tracks itself, with a
//! fixed 30 s limit of its own. Against Grafana's real frontend that wait sometimes never
//! ends although the page has loaded (docs/adr/0008), and the render was lost 30 s later
//! as "unreachable". So the navigation is watched twice: by `goto` (which also reports
//! the browser's own load errors, like a refused connection) and by this module, which
//! sees the main frame commit a new document (`Page.lifecycleEvent` "init") and that
//! document's "load". Whichever finishes first wins; the request's deadline, enforced
//! by the caller, is the only time limit. A tab whose `goto` was left hanging is not
//! lent again: the library's stale wait would hold up its next navigation.

use std::collections::HashSet;
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::EventLifecycleEvent;
use chromiumoxide::error::CdpError;
use futures::StreamExt;

use super::readiness;
use crate::error::RenderError;

/// How long `goto` may lag behind the page's own "load" before it is given up on.
const GOTO_LAG: Duration = Duration::from_millis(300);

/// How the navigation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// `goto` returned: the normal case.
    ByClient,
    /// The page loaded but the CDP client's wait did not end: the tab must be discarded.
    ByLifecycle,
}

/// Navigates `page` to `url` and returns once its document has loaded. A load error
/// comes back as the browser's reason (`net::ERR_…`).
pub async fn goto(page: &Page, url: &str) -> Result<Loaded, NavigationFailure> {
    let main_frame = page.target_id().as_ref().to_string();
    let lifecycle = page
        .event_listener::<EventLifecycleEvent>()
        .await
        .map_err(|e| NavigationFailure::Cdp(e.to_string()))?;
    let client = page.goto(url);
    tokio::pin!(client);
    let loaded = document_loaded(lifecycle, main_frame);
    tokio::pin!(loaded);
    let mut page_loaded = false;
    let client_said = tokio::select! {
        r = &mut client => r,
        seen = &mut loaded => {
            page_loaded = true;
            match tokio::time::timeout(GOTO_LAG, &mut client).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::debug!(
                        lifecycle = %seen,
                        "the page loaded but the CDP client's navigation wait did not end; continuing without it"
                    );
                    return rescued(page).await;
                }
            }
        }
    };
    match client_said {
        Ok(_) => Ok(Loaded::ByClient),
        // The client's own fixed 30 s limit is no verdict on the page: only the request's
        // deadline (the caller's) is. Go on waiting for the page itself.
        Err(CdpError::Timeout) => {
            if !page_loaded {
                loaded.await;
            }
            rescued(page).await
        }
        Err(e) => Err(NavigationFailure::Load(e.to_string())),
    }
}

/// The page loaded without the CDP client noticing: counted, and checked for Chromium's
/// error page (a failed load commits one, which loads too).
async fn rescued(page: &Page) -> Result<Loaded, NavigationFailure> {
    crate::cdp_health::NAVIGATION_RESCUES.inc();
    match error_page(page).await {
        Some(reason) => Err(NavigationFailure::Load(reason)),
        None => Ok(Loaded::ByLifecycle),
    }
}

/// Why a navigation failed.
#[derive(Debug)]
pub enum NavigationFailure {
    /// The browser could not load the URL (its reason).
    Load(String),
    /// Talking to Chromium failed.
    Cdp(String),
}

impl NavigationFailure {
    /// Into the render's error for `url`.
    pub(crate) fn into_render_error(self, url: &str) -> RenderError {
        match self {
            NavigationFailure::Load(reason) => RenderError::Navigation {
                url: url.to_string(),
                reason,
            },
            NavigationFailure::Cdp(e) => RenderError::cdp("loading the page", e),
        }
    }

    /// The browser's reason, for a load failure.
    pub fn reason(&self) -> &str {
        match self {
            NavigationFailure::Load(r) | NavigationFailure::Cdp(r) => r,
        }
    }
}

/// Resolves when the main frame has committed a new document and that document fired
/// "load". Never resolves if the event stream ends (the caller's other branch decides).
async fn document_loaded(
    mut events: impl futures::Stream<Item = std::sync::Arc<EventLifecycleEvent>> + Unpin,
    main_frame: String,
) -> String {
    let mut committed: HashSet<String> = HashSet::new();
    let mut seen = Vec::new();
    while let Some(ev) = events.next().await {
        if ev.frame_id.as_ref() != main_frame {
            seen.push(format!("sub:{}", ev.name));
            continue;
        }
        seen.push(ev.name.clone());
        let loader = ev.loader_id.inner().clone();
        match ev.name.as_str() {
            "init" => {
                committed.insert(loader);
            }
            "load" if committed.contains(&loader) => return seen.join(","),
            _ => {}
        }
    }
    std::future::pending::<String>().await
}

/// The reason when the main frame shows Chromium's error page instead of the target.
async fn error_page(page: &Page) -> Option<String> {
    let href: String = readiness::evaluate(page, "location.href", "checking the loaded page")
        .await
        .ok()?;
    href.starts_with("chrome-error:")
        .then(|| "the browser could not load the page (it shows its error page)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chromiumoxide::cdp::browser_protocol::network::{LoaderId, MonotonicTime};
    use std::sync::Arc;

    fn ev(frame: &str, loader: &str, name: &str) -> Arc<EventLifecycleEvent> {
        Arc::new(EventLifecycleEvent {
            frame_id: frame.to_string().into(),
            loader_id: LoaderId::new(loader),
            name: name.into(),
            timestamp: MonotonicTime::new(0.0),
        })
    }

    async fn finishes(events: Vec<Arc<EventLifecycleEvent>>) -> bool {
        let stream = futures::stream::iter(events);
        tokio::time::timeout(
            Duration::from_millis(50),
            document_loaded(stream, "main".into()),
        )
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn only_the_load_of_a_newly_committed_main_document_counts() {
        // The previous document's late load, a sub-frame's load: not ours.
        assert!(
            !finishes(vec![
                ev("main", "old", "load"),
                ev("child", "x", "init"),
                ev("child", "x", "load")
            ])
            .await
        );
        // Committed but not loaded yet.
        assert!(
            !finishes(vec![
                ev("main", "new", "init"),
                ev("main", "new", "DOMContentLoaded")
            ])
            .await
        );
        assert!(
            finishes(vec![
                ev("main", "old", "load"),
                ev("main", "new", "init"),
                ev("main", "new", "load")
            ])
            .await
        );
    }
}
