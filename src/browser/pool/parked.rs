//! Parked apps: tabs left unscrubbed, Grafana's app still loaded, for the next render of
//! the *same* viewer (`render.reuse-app`; the page layer decides who that is and what to
//! check before trusting the app again, see `page::reuse`).
//!
//! A parked tab is lent only to a render asking for exactly its key, and one app per key is
//! kept. Parked apps may use the pool's extra room for them (`BrowserOptions::parked_tabs`)
//! beyond one tab per render slot. (It is not frozen
//! while it waits: Chromium 14x's `Page.setWebLifecycleState` left timers stopped after
//! thawing, and the next readiness wait never ended.) It leaves the parking in one of three ways:
//! lent to its viewer; scrubbed like any used tab when its app idles for the pool's idle
//! timeout or when another render needs its room (the pool is full); disposed when in doubt.

use std::any::Any;

use super::{LeasedTab, LiveBrowser, Tab, TabPool, dispose, leftover_targets, scrub};

/// An app left loaded in a tab for one viewer.
pub struct ParkedApp {
    /// Who and what the app was loaded for; only a render with the same key gets it.
    pub key: String,
    /// What the page layer needs to trust the app again (opaque here).
    pub state: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for ParkedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key names a viewer: not for logs.
        f.write_str("ParkedApp { .. }")
    }
}

/// Where in `parked` the most recently parked app of `key` is.
pub(super) fn find(parked: &[Tab], key: &str) -> Option<usize> {
    parked
        .iter()
        .rposition(|t| t.app.as_ref().is_some_and(|a| a.key == key))
}

/// A parked tab with its app, or `None` (then it was disposed).
pub(super) async fn unpark(browser: &LiveBrowser, mut tab: Tab) -> Option<(Tab, ParkedApp)> {
    let app = tab.app.take();
    let alive = !browser.tabs.is_crashed(&tab);
    match app {
        Some(app) if alive => Some((tab, app)),
        _ => {
            dispose(browser, tab).await;
            None
        }
    }
}

impl LeasedTab {
    /// Ends the loan keeping the app loaded for `app.key`'s next render. A tab whose
    /// render left anything else behind in its context (a pop-up, a worker) is disposed.
    /// Awaited, so that the viewer's next request finds the app parked.
    pub async fn park(mut self, app: ParkedApp) {
        let Some(mut tab) = self.tab.take() else {
            return;
        };
        let browser = self.browser.clone();
        let spoiled = self.spoiled.load(std::sync::atomic::Ordering::Relaxed);
        tab.uses += 1;
        if !spoiled && tab.uses < browser.tabs.max_uses && !browser.died.is_cancelled() {
            match quiesce(&browser, &tab).await {
                Ok(()) => {
                    tab.app = Some(app);
                    // One app per viewer is kept: a second (from renders of the same viewer
                    // at once) is scrubbed for anyone, not parked in another viewer's place.
                    if let Err(tab) = browser.tabs.put_parked(tab) {
                        tokio::spawn(async move { retire(&browser, tab).await });
                    }
                    return;
                }
                Err(e) => tracing::debug!("not parking a tab: {e}"),
            }
        }
        tokio::spawn(async move { dispose(&browser, tab).await });
    }
}

/// Stops the render's request gate and checks nothing else lives in the context.
async fn quiesce(browser: &LiveBrowser, tab: &Tab) -> Result<(), String> {
    tab.page
        .execute(chromiumoxide::cdp::browser_protocol::fetch::DisableParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let others = leftover_targets(browser, tab).await?;
    if !others.is_empty() {
        return Err(format!("the render left {}", others.join(", ")));
    }
    Ok(())
}

/// A parked tab scrubbed for any render, or `None` (then it was disposed).
pub(super) async fn unpark_scrubbed(browser: &LiveBrowser, mut tab: Tab) -> Option<Tab> {
    tab.app = None;
    let ok = !browser.tabs.is_crashed(&tab) && scrub(browser, &tab).await.is_ok();
    if ok {
        return Some(tab);
    }
    dispose(browser, tab).await;
    None
}

/// Gives back a parked app whose viewer went idle: scrubbed into the idle tabs (it still
/// holds the warm static assets), or disposed.
pub(super) async fn retire(browser: &LiveBrowser, tab: Tab) {
    if let Some(tab) = unpark_scrubbed(browser, tab).await {
        browser.tabs.put_idle(tab);
    }
}

impl TabPool {
    /// Parks `tab`, unless an app of its key is parked already (then it is handed back).
    fn put_parked(&self, mut tab: Tab) -> Result<(), Tab> {
        tab.idle_since = std::time::Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return Err(tab);
        };
        let key = tab.app.as_ref().map(|a| a.key.as_str()).unwrap_or_default();
        if find(&state.parked, key).is_some() {
            return Err(tab);
        }
        state.parked.push(tab);
        drop(state);
        self.returned.notify_one();
        Ok(())
    }

    /// Parked apps idle for the idle timeout or longer.
    pub(super) fn take_expired_apps(&self) -> Vec<Tab> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        let timeout = self.idle_timeout;
        let (expired, kept) = std::mem::take(&mut state.parked)
            .into_iter()
            .partition(|t| t.idle_since.elapsed() >= timeout);
        state.parked = kept;
        expired
    }
}
