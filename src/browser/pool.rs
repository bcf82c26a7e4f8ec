//! Warm tabs, each alone in its own browser context, lent to one render at a time.
//!
//! Creating a context per render costs Grafana's whole JavaScript bundle on every render
//! (an incognito context has its own HTTP and code cache, and a new tab a new renderer
//! process). So a render borrows a tab whose context already holds the cached static
//! assets, and gives it back **scrubbed**: session and local storage cleared in the page,
//! the tab sent to `about:blank`, every cookie of the context deleted, and every other
//! kind of storage (IndexedDB, Cache API, service workers, …) of every origin the render's
//! frames used deleted. Only Chromium's HTTP cache survives, which holds what Grafana marks
//! cacheable: its static assets. Concurrent renders always use different contexts.
//! After `max_uses` renders, or any doubt about its state, a context is disposed.
//! See docs/adr/0003.
//!
//! Tabs are opened on demand (one warm at start) and given back when the load goes: a tab
//! idle for `idle_timeout` is disposed, down to one, which keeps Grafana's cached assets warm
//! for the next render ([`shrink_when_idle`]). Idle tabs are lent most recently used first, so
//! the ones that age are the ones a quieter load no longer needs.
//!
//! After `close_last_after` the last tab is closed too, but its context is kept ([`Dormant`]):
//! its renderer process goes, the HTTP cache stays, and the next render opens a tab in it.
//!
//! With warm app reuse (`render.reuse-app`, see [`parked`]) a tab may instead be *parked*
//! unscrubbed, its Grafana app still loaded, for the next render of the same viewer only.

mod parked;
pub use parked::ParkedApp;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::dom_storage::{self, StorageId};
use chromiumoxide::cdp::browser_protocol::emulation::SetScriptExecutionDisabledParams;
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, FrameTree, GetFrameTreeParams,
};
use chromiumoxide::cdp::browser_protocol::storage::{ClearCookiesParams, ClearDataForOriginParams};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams, EventTargetCrashed, GetTargetsParams, TargetId,
};
use chromiumoxide::cdp::js_protocol::runtime::AddBindingParams;
use futures::StreamExt;

use super::LiveBrowser;
use crate::error::RenderError;

/// What every new tab gets before its first render, given by the page layer: bindings the
/// page calls, and scripts run in every document it loads. Both persist across navigations.
#[derive(Debug, Clone, Default)]
pub struct TabSetup {
    pub bindings: Vec<&'static str>,
    pub scripts_on_new_document: Vec<&'static str>,
}

/// Storage kinds deleted per origin between renders (everything but the HTTP cache).
const STORAGE_TYPES: &str = "cookies,file_systems,indexeddb,local_storage,shader_cache,websql,service_workers,cache_storage,interest_groups,shared_storage,storage_buckets";

/// A tab alone in its browser context.
pub struct Tab {
    pub context_id: BrowserContextId,
    pub page: Page,
    uses: u32,
    /// When it was last given back to the pool.
    idle_since: std::time::Instant,
    /// The app left loaded for one viewer, while parked.
    app: Option<ParkedApp>,
}

/// A context whose last tab was closed after a long idle. It holds no renderer process but
/// keeps its HTTP cache (an off-the-record context's cache lives as long as the context), so
/// the next render opens a tab in it rather than in a new context with a cold cache.
struct Dormant {
    context_id: BrowserContextId,
    uses: u32,
}

/// The tabs of one browser: at most `capacity` exist (one per concurrent render);
/// a render waits for a tab being scrubbed rather than paying for a cold one.
pub struct TabPool {
    state: Mutex<PoolState>,
    returned: tokio::sync::Notify,
    capacity: usize,
    /// Tabs whose renderer crashed (an OOM kill can hit an idle tab too).
    crashed: Mutex<HashSet<TargetId>>,
    /// Renders one context serves before it is disposed; 1 means a fresh context per render.
    max_uses: u32,
    opened: AtomicU64,
    /// Counts contexts opened by every browser (`grender_browser_contexts_opened_total`).
    contexts_opened: prometheus::IntCounter,
    setup: Arc<TabSetup>,
    /// Idle tabs beyond one are disposed after this long (zero: never).
    idle_timeout: std::time::Duration,
    /// The last idle tab is closed, its context kept dormant, after this long (zero: never).
    close_last_after: std::time::Duration,
}

/// The tabs of a pool by what they are doing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TabCensus {
    /// Scrubbed, waiting for any render.
    pub idle: usize,
    /// An app kept loaded for its viewer's next render.
    pub parked: usize,
    /// Lent to a render, being opened or being scrubbed.
    pub busy: usize,
    /// A context kept for its HTTP cache without a tab (0 or 1).
    pub dormant: usize,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Tab>,
    /// Unscrubbed tabs with an app loaded for one viewer, oldest first.
    parked: Vec<Tab>,
    /// Tabs in existence or being opened: idle, parked, lent or being scrubbed, and a
    /// dormant context.
    total: usize,
    dormant: Option<Dormant>,
    /// Tabs given back and being scrubbed: warm tabs in a moment.
    scrubbing: usize,
}

impl PoolState {
    fn push_idle(&mut self, mut tab: Tab) {
        tab.idle_since = std::time::Instant::now();
        self.idle.push(tab);
    }
}

impl TabPool {
    /// A pool of up to `capacity` tabs whose contexts serve `max_uses` renders each.
    pub fn new(
        capacity: usize,
        max_uses: u32,
        setup: Arc<TabSetup>,
        idle_timeout: std::time::Duration,
        close_last_after: std::time::Duration,
        contexts_opened: prometheus::IntCounter,
    ) -> Self {
        TabPool {
            state: Mutex::new(PoolState::default()),
            returned: tokio::sync::Notify::new(),
            capacity: capacity.max(1),
            crashed: Mutex::new(HashSet::new()),
            max_uses: max_uses.max(1),
            opened: AtomicU64::new(0),
            contexts_opened,
            setup,
            idle_timeout,
            close_last_after,
        }
    }

    /// Contexts opened so far (tests and metrics: shows reuse).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// What the tabs are doing now, for the metrics: each tab is a renderer process.
    pub fn census(&self) -> TabCensus {
        self.state
            .lock()
            .map(|s| {
                let dormant = usize::from(s.dormant.is_some());
                TabCensus {
                    idle: s.idle.len(),
                    parked: s.parked.len(),
                    busy: s
                        .total
                        .saturating_sub(s.idle.len() + s.parked.len() + dormant),
                    dormant,
                }
            })
            .unwrap_or_default()
    }

    /// Tabs waiting for a render now (scrubbed or parked), and tabs in existence (idle,
    /// parked, lent, being scrubbed).
    pub fn counts(&self) -> (usize, usize) {
        let c = self.census();
        let waiting = c.idle + c.parked;
        (waiting, waiting + c.busy + c.dormant)
    }

    /// Takes out the idle tabs (all but the most recently used one) that have waited
    /// `idle_timeout` or longer, for disposal.
    fn take_expired(&self) -> Vec<Tab> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        // Lent last-in first-out: the oldest idle tab is the first.
        while state.idle.len() > 1 && state.idle[0].idle_since.elapsed() >= self.idle_timeout {
            expired.push(state.idle.remove(0));
        }
        expired
    }

    /// Takes out the last idle tab once it has waited `close_last_after`, for closing its tab
    /// and keeping its context dormant.
    fn take_last_idle(&self) -> Option<Tab> {
        let mut state = self.state.lock().ok()?;
        let due = !self.close_last_after.is_zero()
            && state.dormant.is_none()
            && state.parked.is_empty()
            && state.idle.len() == 1
            && state.idle[0].idle_since.elapsed() >= self.close_last_after;
        due.then(|| state.idle.remove(0))
    }

    fn keep_dormant(&self, dormant: Dormant) {
        if let Ok(mut state) = self.state.lock() {
            state.dormant = Some(dormant);
        }
        self.returned.notify_one();
    }

    /// Notes that the renderer of `target` crashed, so its tab is never lent again.
    pub fn mark_crashed(&self, target: TargetId) {
        if let Ok(mut crashed) = self.crashed.lock() {
            crashed.insert(target);
        }
    }

    fn is_crashed(&self, tab: &Tab) -> bool {
        self.crashed
            .lock()
            .map(|c| c.contains(tab.page.target_id()))
            .unwrap_or(true)
    }

    /// Counts one more tab if there is room for it.
    fn reserve(&self) -> bool {
        match self.state.lock() {
            Ok(mut state) if state.total < self.capacity => {
                state.total += 1;
                true
            }
            _ => false,
        }
    }

    /// Notes a tab given back for scrubbing, before the scrub starts, so that a lease in the
    /// meantime knows a warm tab is on its way.
    fn scrub_started(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.scrubbing += 1;
        }
    }

    /// Ends a scrub: the tab becomes idle (in the same step, so no lease sees it neither
    /// scrubbing nor idle), or `None` when it is disposed instead.
    fn scrub_ended(&self, tab: Option<Tab>) {
        if let Ok(mut state) = self.state.lock() {
            state.scrubbing = state.scrubbing.saturating_sub(1);
            if let Some(tab) = tab {
                state.push_idle(tab);
            }
        }
        self.returned.notify_one();
    }

    fn put_idle(&self, tab: Tab) {
        if let Ok(mut state) = self.state.lock() {
            state.push_idle(tab);
        }
        self.returned.notify_one();
    }

    fn forget_one(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.total = state.total.saturating_sub(1);
        }
        self.returned.notify_one();
    }
}

/// Counts a tab being opened; uncounts it unless the opening succeeded.
struct Opening<'a> {
    pool: &'a TabPool,
    done: bool,
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.pool.forget_one();
        }
    }
}

/// Creates a context with one blank tab, prepared for renders.
pub async fn open_tab(browser: &LiveBrowser) -> Result<Tab, RenderError> {
    let context_id = browser
        .cdp
        .create_browser_context(CreateBrowserContextParams::default())
        .await
        .map_err(|e| RenderError::cdp("creating a browser context", e))?;
    let tab = reopen_tab(browser, context_id, 0).await?;
    browser.tabs.opened.fetch_add(1, Ordering::Relaxed);
    browser.tabs.contexts_opened.inc();
    Ok(tab)
}

/// Opens a blank tab, prepared for renders, in the existing context `context_id` (which is
/// disposed if that fails).
async fn reopen_tab(
    browser: &LiveBrowser,
    context_id: BrowserContextId,
    uses: u32,
) -> Result<Tab, RenderError> {
    let cdp = &browser.cdp;
    let target = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(context_id.clone())
        .build()
        .map_err(|e| RenderError::cdp("opening a tab", e))?;
    let setup = async {
        let page = cdp
            .new_page(target)
            .await
            .map_err(|e| RenderError::cdp("opening a tab", e))?;
        let setup = &browser.tabs.setup;
        for name in &setup.bindings {
            page.execute(AddBindingParams::new(*name))
                .await
                .map_err(|e| RenderError::cdp("adding the render binding", e))?;
        }
        for script in &setup.scripts_on_new_document {
            page.execute(AddScriptToEvaluateOnNewDocumentParams::new(*script))
                .await
                .map_err(|e| RenderError::cdp("installing the page scripts", e))?;
        }
        Ok(page)
    };
    match setup.await {
        Ok(page) => Ok(Tab {
            context_id,
            page,
            uses,
            idle_since: std::time::Instant::now(),
            app: None,
        }),
        Err(e) => {
            let _ = cdp.dispose_browser_context(context_id).await;
            Err(e)
        }
    }
}

/// Lends a tab to one render; see [`LeasedTab::give_back`]. With `want_app`, a tab parked
/// with that key comes first, and comes with its [`ParkedApp`].
pub async fn lease(
    browser: &Arc<LiveBrowser>,
    want_app: Option<&str>,
) -> Result<(LeasedTab, Option<ParkedApp>), RenderError> {
    let pool = &browser.tabs;
    let lent = |tab| LeasedTab {
        browser: browser.clone(),
        tab: Some(tab),
        spoiled: Default::default(),
    };
    // A warm tab being scrubbed is waited for once, briefly, before a new context is opened:
    // its cached assets and warm renderer save far more than the scrub takes.
    let mut scrub_wait_until = None;
    loop {
        let returned = pool.returned.notified();
        let wait_for_scrub =
            scrub_wait_until.is_none_or(|until| tokio::time::Instant::now() < until);
        match pool.take_or_reserve(want_app, wait_for_scrub)? {
            Taken::App(tab) => {
                if let Some((tab, app)) = parked::unpark(browser, tab).await {
                    return Ok((lent(tab), Some(app)));
                }
            }
            Taken::Idle(tab) => {
                let crashed = pool.is_crashed(&tab);
                let leased = lent(tab);
                if !crashed {
                    return Ok((leased, None));
                }
                drop(leased); // disposes the crashed tab's context and frees its place
            }
            Taken::Reserved => {
                let mut opening = Opening { pool, done: false };
                let tab = open_tab(browser).await?;
                opening.done = true;
                return Ok((lent(tab), None));
            }
            Taken::Dormant(dormant) => {
                // Its place is counted already; a context that cannot take a tab any more is
                // gone (disposed), and the loop opens a new one.
                let mut opening = Opening { pool, done: false };
                if let Ok(tab) = reopen_tab(browser, dormant.context_id, dormant.uses).await {
                    opening.done = true;
                    return Ok((lent(tab), None));
                }
            }
            Taken::Parked(tab) => {
                // Every tab is taken and one holds another viewer's app: it is scrubbed
                // and lent, as any used tab would be.
                if let Some(tab) = parked::unpark_scrubbed(browser, tab).await {
                    return Ok((lent(tab), None));
                }
            }
            Taken::Full => returned.await,
            Taken::Scrubbing => {
                // Woken by any tab coming back (or a stale wake-up): look again, until
                // the wait's end.
                let until = *scrub_wait_until
                    .get_or_insert_with(|| tokio::time::Instant::now() + SCRUB_WAIT);
                let _ = tokio::time::timeout_at(until, returned).await;
            }
        }
    }
}

enum Taken {
    /// A tab parked with the wanted key.
    App(Tab),
    Idle(Tab),
    /// The dormant context, to open a tab in.
    Dormant(Dormant),
    Reserved,
    /// The oldest parked app, taken because there is no other room.
    Parked(Tab),
    /// No idle tab, but one is being scrubbed: worth a short wait.
    Scrubbing,
    Full,
}

/// Longest wait for a tab being scrubbed before a lease opens a new context instead
/// (a scrub takes tens of milliseconds; a cold context costs a render ~0.5 s more).
const SCRUB_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

impl TabPool {
    /// The wanted app, else an idle tab (with `wait_for_scrub` only one that has rendered
    /// before, else a tab soon back from its scrub), else the dormant context, room for a new
    /// one, a parked tab to scrub, or nothing until a tab comes back.
    fn take_or_reserve(
        &self,
        want_app: Option<&str>,
        wait_for_scrub: bool,
    ) -> Result<Taken, RenderError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| RenderError::cdp("leasing a tab", "pool lock poisoned"))?;
        if let Some(at) = want_app.and_then(|key| parked::find(&state.parked, key)) {
            return Ok(Taken::App(state.parked.remove(at)));
        }
        // A tab that has rendered before (its context's cache and its renderer warm) is
        // worth a short wait; one opened ahead of time but never used is not.
        let warm_soon = wait_for_scrub && state.scrubbing > 0;
        if let Some(at) = state.idle.iter().rposition(|t| t.uses > 0 || !warm_soon) {
            return Ok(Taken::Idle(state.idle.remove(at)));
        }
        if warm_soon {
            return Ok(Taken::Scrubbing);
        }
        if let Some(dormant) = state.dormant.take() {
            return Ok(Taken::Dormant(dormant));
        }
        if state.total < self.capacity {
            state.total += 1;
            return Ok(Taken::Reserved);
        }
        if !state.parked.is_empty() {
            return Ok(Taken::Parked(state.parked.remove(0)));
        }
        Ok(Taken::Full)
    }
}

/// Marks tabs whose renderer crashes, for as long as `browser` lives.
pub fn watch_crashes(browser: &Arc<LiveBrowser>) {
    let browser = browser.clone();
    tokio::spawn(async move {
        let Ok(mut crashes) = browser.cdp.event_listener::<EventTargetCrashed>().await else {
            return;
        };
        loop {
            tokio::select! {
                ev = crashes.next() => match ev {
                    Some(ev) => browser.tabs.mark_crashed(ev.target_id.clone()),
                    None => return,
                },
                _ = browser.died.cancelled() => return,
            }
        }
    });
}

/// Disposes tabs that stayed idle for the pool's idle timeout, down to one, for as long as
/// `browser` lives: an idle service holds one warm tab, not one per render slot; after
/// `close_last_after` that tab is closed and its context kept dormant, so no renderer process
/// is left. Parked apps idle for the idle timeout are scrubbed into the idle tabs.
pub fn shrink_when_idle(browser: &Arc<LiveBrowser>) {
    let (timeout, close_last_after) = (browser.tabs.idle_timeout, browser.tabs.close_last_after);
    let shortest = [timeout, close_last_after]
        .into_iter()
        .filter(|t| !t.is_zero())
        .min();
    let Some(shortest) = shortest else {
        return;
    };
    let browser = browser.clone();
    let every = (shortest / 4).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(10),
    );
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = browser.died.cancelled() => return,
            }
            if !timeout.is_zero() {
                for tab in browser.tabs.take_expired_apps() {
                    tracing::debug!("giving back an app idle for {timeout:?}");
                    parked::retire(&browser, tab).await;
                }
                for tab in browser.tabs.take_expired() {
                    tracing::debug!("disposing a tab idle for {timeout:?}");
                    dispose(&browser, tab).await;
                }
            }
            if let Some(tab) = browser.tabs.take_last_idle() {
                tracing::debug!(
                    "closing the last tab, idle for {close_last_after:?}; its context stays"
                );
                close_keeping_context(&browser, tab).await;
            }
        }
    });
}

/// Opens `count` tabs (at most the pool's capacity) ahead of the first renders. More
/// open on demand: each idle tab holds a renderer process, so few are kept warm.
pub async fn prewarm(browser: &Arc<LiveBrowser>, count: usize) {
    let pool = &browser.tabs;
    for _ in 0..count {
        if !pool.reserve() {
            return;
        }
        let opening = Opening { pool, done: false };
        match open_tab(browser).await {
            Ok(tab) => {
                std::mem::forget(opening);
                pool.put_idle(tab);
            }
            Err(e) => {
                tracing::warn!("could not open a warm tab: {e}");
                return;
            }
        }
    }
}

/// A tab on loan. Dropping it (a render abandoned at its deadline) disposes its context.
pub struct LeasedTab {
    browser: Arc<LiveBrowser>,
    tab: Option<Tab>,
    /// Set when the render left the tab in a state not worth scrubbing.
    spoiled: std::sync::atomic::AtomicBool,
}

impl LeasedTab {
    /// The tab's browser context.
    pub fn context_id(&self) -> Option<&BrowserContextId> {
        self.tab.as_ref().map(|t| &t.context_id)
    }

    /// The tab's page.
    pub fn page(&self) -> &Page {
        &self
            .tab
            .as_ref()
            .expect("a leased tab holds its tab until given back")
            .page
    }

    /// Makes [`LeasedTab::give_back`] dispose the tab's context whatever the render's outcome.
    pub fn spoil(&self) {
        self.spoiled.store(true, Ordering::Relaxed);
    }

    /// Ends the loan. A `reusable` tab is scrubbed in the background and returned to the
    /// pool; otherwise (or when worn out) its context is disposed.
    pub fn give_back(mut self, reusable: bool) {
        let Some(mut tab) = self.tab.take() else {
            return;
        };
        let browser = self.browser.clone();
        let reusable = reusable && !self.spoiled.load(Ordering::Relaxed);
        tab.uses += 1;
        let scrubbing =
            reusable && tab.uses < browser.tabs.max_uses && !browser.died.is_cancelled();
        if scrubbing {
            browser.tabs.scrub_started();
        }
        tokio::spawn(async move {
            if scrubbing {
                match scrub(&browser, &tab).await {
                    Ok(()) => return browser.tabs.scrub_ended(Some(tab)),
                    Err(e) => tracing::debug!("discarding a tab's context: {e}"),
                }
                browser.tabs.scrub_ended(None);
            }
            dispose(&browser, tab).await;
        });
    }
}

impl Drop for LeasedTab {
    fn drop(&mut self) {
        if let Some(tab) = self.tab.take() {
            let browser = self.browser.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { dispose(&browser, tab).await });
            }
        }
    }
}

/// Closes a tab but keeps its context (and HTTP cache) for the next render.
async fn close_keeping_context(browser: &LiveBrowser, tab: Tab) {
    let (context_id, uses) = (tab.context_id.clone(), tab.uses);
    match tab.page.close().await {
        Ok(()) => browser.tabs.keep_dormant(Dormant { context_id, uses }),
        Err(e) => {
            tracing::debug!("could not close an idle tab ({e}); disposing its context");
            let _ = browser.cdp.dispose_browser_context(context_id).await;
            browser.tabs.forget_one();
        }
    }
}

/// Closes a tab's context and frees its place in the pool.
async fn dispose(browser: &LiveBrowser, tab: Tab) {
    let _ = browser.cdp.dispose_browser_context(tab.context_id).await;
    browser.tabs.forget_one();
}

/// Removes every trace of the last render from the tab's context except the HTTP cache.
async fn scrub(browser: &LiveBrowser, tab: &Tab) -> Result<(), String> {
    clear(browser, tab).await.map_err(|e| e.to_string())?;
    // Anything else the render made in its context (a pop-up, a service or shared
    // worker) could outlive it and act with the next render's cookie: the context goes.
    let others = leftover_targets(browser, tab).await?;
    if others.is_empty() {
        Ok(())
    } else {
        Err(format!("the render left {}", others.join(", ")))
    }
}

/// The targets of `tab`'s context other than the tab itself, as "type" names.
async fn leftover_targets(browser: &LiveBrowser, tab: &Tab) -> Result<Vec<String>, String> {
    let targets = browser
        .cdp
        .execute(GetTargetsParams::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(targets
        .result
        .target_infos
        .iter()
        .filter(|t| t.browser_context_id.as_ref() == Some(&tab.context_id))
        .filter(|t| &t.target_id != tab.page.target_id())
        .map(|t| t.r#type.clone())
        .collect())
}

/// Deletes the last render's cookies, storage and document; the HTTP cache stays.
async fn clear(browser: &LiveBrowser, tab: &Tab) -> Result<(), chromiumoxide::error::CdpError> {
    let page = &tab.page;
    let tree = page.execute(GetFrameTreeParams::default()).await?;
    let mut origins = BTreeSet::new();
    collect_origins(&tree.result.frame_tree, &mut origins);
    // A render's request guard (if any) ends with it.
    page.execute(chromiumoxide::cdp::browser_protocol::fetch::DisableParams::default())
        .await?;
    // Stop the page's scripts first, so nothing is written after the clean-up.
    page.execute(SetScriptExecutionDisabledParams::new(true))
        .await?;
    // Session storage belongs to the tab and can only be reached while its frames exist.
    for origin in &origins {
        let id = StorageId {
            security_origin: Some(origin.clone()),
            storage_key: None,
            is_local_storage: false,
        };
        page.execute(dom_storage::ClearParams::new(id)).await?;
    }
    page.goto("about:blank").await?;
    page.execute(SetScriptExecutionDisabledParams::new(false))
        .await?;
    browser
        .cdp
        .execute(ClearCookiesParams {
            browser_context_id: Some(tab.context_id.clone()),
        })
        .await?;
    for origin in origins {
        page.execute(ClearDataForOriginParams::new(origin, STORAGE_TYPES))
            .await?;
    }
    Ok(())
}

fn collect_origins(tree: &FrameTree, out: &mut BTreeSet<String>) {
    let origin = &tree.frame.security_origin;
    if origin.starts_with("http://") || origin.starts_with("https://") {
        out.insert(origin.clone());
    }
    for child in tree.child_frames.iter().flatten() {
        collect_origins(child, out);
    }
}
