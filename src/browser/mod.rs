//! One long-lived, supervised Chromium shared by all renders.
//!
//! The supervisor task launches Chromium, publishes it as [`BrowserState::Ready`], and
//! watches the CDP connection. When the connection breaks (Chromium crashed or was
//! killed) it cancels the browser's `died` token, so every render using it fails at
//! once, kills and reaps what is left of the tree, and launches a new one with backoff.

pub mod launch;
pub(crate) mod memory;
pub mod pool;
mod process_pool;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::browser::CloseParams;
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use launch::ChromiumProcess;
pub use launch::LaunchOptions;
pub use pool::TabSetup;

use crate::error::RenderError;
use crate::request::{Deadline, Stage};

/// A connected Chromium. Renders hold an `Arc` of it for their whole run.
pub struct LiveBrowser {
    /// The CDP client.
    pub cdp: chromiumoxide::Browser,
    /// Cancelled the moment this Chromium is known to be dead.
    pub died: CancellationToken,
    /// Chromium's product string, e.g. `HeadlessChrome/156.0.0.0`.
    pub version: String,
    /// Process id of the browser process.
    pub pid: u32,
    /// Counts launches, so logs and tests can tell a relaunch happened.
    pub generation: u64,
    /// Warm tabs, each in its own context, lent to renders.
    pub tabs: pool::TabPool,
    /// Renders started on this browser, for recycling.
    renders: AtomicU64,
    /// Renders running on this browser now; a recycled browser closes at zero.
    in_flight: AtomicUsize,
    /// Set when a successor took over: no new render starts here.
    retired: AtomicBool,
    /// Woken at each render start, so recycling by count happens promptly.
    render_started: tokio::sync::Notify,
}

impl LiveBrowser {
    /// Registers a render on this browser; `None` when it is being recycled (take the
    /// current browser again).
    pub fn begin_render(self: &Arc<Self>) -> Option<RenderOnBrowser> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.retired.load(Ordering::SeqCst) {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        self.renders.fetch_add(1, Ordering::Relaxed);
        self.render_started.notify_one();
        Some(RenderOnBrowser(self.clone()))
    }

    /// Renders started on this browser.
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }
}

/// A render in progress on a browser; ends when dropped.
pub struct RenderOnBrowser(Arc<LiveBrowser>);

impl Drop for RenderOnBrowser {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How the supervisor runs browsers.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// How to start the process.
    pub launch: LaunchOptions,
    /// Renders one scrubbed context serves before it is replaced (1: a fresh context each time).
    pub context_reuse: u32,
    /// Tabs (one per concurrent render), opened ahead of the first renders.
    pub tabs: usize,
    /// More tabs allowed for apps parked for their viewer's next render (render.reuse-app).
    pub parked_tabs: usize,
    /// Strict isolation: a fresh Chromium per render, from spares launched ahead.
    pub process_per_render: bool,
    /// Replace Chromium after this many renders (0: never).
    pub recycle_after: u64,
    /// Replace Chromium when its processes use more than this many MiB (0: no limit).
    pub memory_budget_mib: u64,
    /// What every tab gets before its first render (the page's binding and scripts).
    pub tab_setup: Arc<TabSetup>,
    /// Idle tabs beyond one are closed after this long (zero: never).
    pub idle_timeout: Duration,
    /// The last idle tab is closed after this long, its context kept (zero: never).
    pub close_last_after: Duration,
    /// Counts every Chromium launched (`grender_browser_launches_total`).
    pub launches: prometheus::IntCounter,
    /// Counts every browser context opened (`grender_browser_contexts_opened_total`).
    pub contexts_opened: prometheus::IntCounter,
}

/// What the supervisor currently offers.
#[derive(Clone)]
pub enum BrowserState {
    /// Launching; renders wait for it within their deadline.
    Starting,
    /// Ready for renders.
    Ready(Arc<LiveBrowser>),
    /// The last launch failed; the reason is shown to callers while it retries.
    Failed(String),
    /// Shut down for good.
    Stopped,
}

/// Owns the supervisor task; see the module docs.
pub struct BrowserSupervisor {
    state: watch::Receiver<BrowserState>,
    shutdown: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Present in strict isolation mode: a fresh browser per render.
    processes: Option<process_pool::ProcessPool>,
}

/// A browser lent to one render, released when dropped.
pub struct BrowserLease {
    browser: Arc<LiveBrowser>,
    _hold: LeaseHold,
}

/// Held only for what its drop does: end the render's count, or close its own browser.
#[allow(dead_code)]
enum LeaseHold {
    Shared(RenderOnBrowser),
    OneShot(process_pool::OneShot),
}

impl BrowserLease {
    /// The browser to render with.
    pub fn browser(&self) -> &Arc<LiveBrowser> {
        &self.browser
    }
}

impl BrowserSupervisor {
    /// Starts the supervisor; the first launch begins at once in the background.
    pub fn start(opts: BrowserOptions) -> Arc<Self> {
        let (tx, rx) = watch::channel(BrowserState::Starting);
        let shutdown = CancellationToken::new();
        let (task, processes) = if opts.process_per_render {
            let spares = opts.tabs.clamp(1, 2);
            let (pool, filler) =
                process_pool::ProcessPool::start(opts, spares, tx, shutdown.clone());
            (filler, Some(pool))
        } else {
            (tokio::spawn(supervise(opts, tx, shutdown.clone())), None)
        };
        Arc::new(BrowserSupervisor {
            state: rx,
            shutdown,
            task: std::sync::Mutex::new(Some(task)),
            processes,
        })
    }

    /// A browser for one render: the shared one (a successor if it is being recycled),
    /// or in strict isolation mode a fresh one of its own.
    pub async fn acquire(&self, deadline: &Deadline) -> Result<BrowserLease, RenderError> {
        if let Some(processes) = &self.processes {
            let one = processes.take(deadline).await?;
            let browser = one
                .browser()
                .cloned()
                .ok_or_else(|| RenderError::BrowserUnavailable("no browser".into()))?;
            return Ok(BrowserLease {
                browser,
                _hold: LeaseHold::OneShot(one),
            });
        }
        loop {
            let browser = self.current(deadline).await?;
            if let Some(on) = browser.begin_render() {
                return Ok(BrowserLease {
                    browser,
                    _hold: LeaseHold::Shared(on),
                });
            }
            tokio::task::yield_now().await;
        }
    }

    /// The current state, for health and version endpoints.
    pub fn state(&self) -> BrowserState {
        self.state.borrow().clone()
    }

    /// Waits (within `deadline`) until a browser is ready.
    pub async fn current(&self, deadline: &Deadline) -> Result<Arc<LiveBrowser>, RenderError> {
        let mut rx = self.state.clone();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    BrowserState::Ready(b)
                        if !b.died.is_cancelled() && !b.retired.load(Ordering::SeqCst) =>
                    {
                        return Ok(b.clone());
                    }
                    BrowserState::Failed(msg) => {
                        return Err(RenderError::BrowserUnavailable(msg.clone()));
                    }
                    BrowserState::Stopped => {
                        return Err(RenderError::BrowserUnavailable(
                            "the service is shutting down".into(),
                        ));
                    }
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return Err(RenderError::BrowserUnavailable(
                        "the browser supervisor stopped".into(),
                    ));
                }
            }
        };
        deadline.run(Stage::StartingChromium, wait).await?
    }

    /// Waits until the first launch has succeeded or failed.
    pub async fn wait_started(&self) -> Result<Arc<LiveBrowser>, String> {
        let mut rx = self.state.clone();
        loop {
            match &*rx.borrow_and_update() {
                BrowserState::Ready(b) => return Ok(b.clone()),
                BrowserState::Failed(msg) => return Err(msg.clone()),
                BrowserState::Stopped => return Err("stopped".into()),
                BrowserState::Starting => {}
            }
            if rx.changed().await.is_err() {
                return Err("the browser supervisor stopped".into());
            }
        }
    }

    /// Closes Chromium and waits until its whole process tree is gone.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        if let Some(processes) = &self.processes {
            processes.close().await;
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn supervise(
    opts: BrowserOptions,
    state: watch::Sender<BrowserState>,
    shutdown: CancellationToken,
) {
    let mut launcher = Launcher::new(opts.clone());
    let mut retiring = tokio::task::JoinSet::new();
    // A browser being replaced keeps serving until its successor is ready.
    let mut outgoing: Option<Running> = None;
    loop {
        let started = tokio::time::Instant::now();
        // A browser being recycled keeps serving while a launch is retried.
        let Some(mut running) = launcher.launch(&state, outgoing.is_none(), &shutdown).await else {
            break;
        };
        let live = running.live.clone();
        tracing::info!(pid = live.pid, version = %live.version, generation = live.generation,
            sandbox = launch::sandbox_state(opts.launch.sandbox), "Chromium is ready");
        state.send_replace(BrowserState::Ready(live.clone()));
        if let Some(old) = outgoing.take() {
            old.live.retired.store(true, Ordering::SeqCst);
            retiring.spawn(retire(old));
        }
        match run(&mut running, &shutdown, &opts).await {
            Ended::Recycle(why) => {
                tracing::info!(
                    generation = live.generation,
                    pid = live.pid,
                    "recycling Chromium: {why}"
                );
                outgoing = Some(running);
                launcher.reset_backoff();
                continue;
            }
            Ended::OverBudget(why) => {
                // A successor started first would add a whole Chromium above the budget: this
                // one stops taking renders, finishes its own, closes, and only then the next
                // one starts. Renders arriving meanwhile wait for it within their deadlines
                // (a retired browser is never handed out).
                tracing::info!(
                    generation = live.generation,
                    pid = live.pid,
                    "recycling Chromium: {why}; draining it before its successor starts"
                );
                live.retired.store(true, Ordering::SeqCst);
                tokio::select! {
                    _ = retire(running) => {}
                    _ = shutdown.cancelled() => {}
                }
                launcher.reset_backoff();
                continue;
            }
            Ended::Died | Ended::Shutdown => {
                // A browser that was serving renders is replaced at once; only one that
                // dies right after start-up (a crash loop) backs off.
                if live.renders() > 0 || started.elapsed() > Duration::from_secs(5) {
                    launcher.launch_next_at_once();
                }
                live.died.cancel();
                if !shutdown.is_cancelled() {
                    state.send_replace(BrowserState::Starting);
                }
                let mut process = running.process;
                tokio::task::spawn_blocking(move || process.kill_tree())
                    .await
                    .ok();
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            launcher.launch_next_at_once();
        }
        if !launcher.back_off(&shutdown).await {
            break;
        }
    }
    state.send_replace(BrowserState::Stopped);
    if let Some(old) = outgoing.take() {
        old.live.died.cancel();
    }
    // Dropping the retiring tasks drops their processes, which kills them.
    retiring.shutdown().await;
}

/// Launches browsers one after another, backing off while launches fail: the one launch path
/// of the shared browser and of strict isolation's spares.
struct Launcher {
    opts: BrowserOptions,
    generation: u64,
    backoff: Duration,
}

/// The first pause after a failed launch; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Launcher {
    fn new(opts: BrowserOptions) -> Self {
        Launcher {
            opts,
            generation: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Launches and connects a browser with a warm tab, retrying with backoff until one is up;
    /// `None` once `shutdown` is cancelled. Failures are published when `publish_failures`.
    async fn launch(
        &mut self,
        state: &watch::Sender<BrowserState>,
        publish_failures: bool,
        shutdown: &CancellationToken,
    ) -> Option<Running> {
        // One failed start may be Chromium's own flake (its zygote's "Broken pipe", seen in
        // CI): it is retried before anyone is told that Chromium cannot start.
        let mut failures = 0;
        while !shutdown.is_cancelled() {
            self.generation += 1;
            match connect(&self.opts, self.generation, shutdown).await {
                Ok((live, process, handler)) => {
                    self.opts.launches.inc();
                    let live = Arc::new(live);
                    pool::watch_crashes(&live);
                    pool::shrink_when_idle(&live);
                    pool::prewarm(&live, 1).await;
                    return Some(Running {
                        live,
                        process,
                        handler,
                    });
                }
                Err(msg) => {
                    tracing::error!(generation = self.generation, "cannot start Chromium: {msg}");
                    failures += 1;
                    if publish_failures && failures > 1 {
                        state.send_replace(BrowserState::Failed(msg));
                    }
                }
            }
            if !self.back_off(shutdown).await {
                return None;
            }
        }
        None
    }

    /// Waits the current backoff (false when `shutdown` came first), then doubles it.
    async fn back_off(&mut self, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.backoff) => {}
            _ = shutdown.cancelled() => return false,
        }
        self.backoff = (self.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
        !shutdown.is_cancelled()
    }

    /// After a successful run: the next failure starts backing off from the beginning.
    fn reset_backoff(&mut self) {
        self.backoff = FIRST_BACKOFF;
    }

    /// The next launch happens without a pause.
    fn launch_next_at_once(&mut self) {
        self.backoff = Duration::ZERO;
    }
}

/// A launched browser with what the supervisor needs to stop it.
struct Running {
    live: Arc<LiveBrowser>,
    process: ChromiumProcess,
    handler: JoinHandle<()>,
}

/// Why a browser's run ended.
enum Ended {
    Died,
    Shutdown,
    /// Due for recycling by count: the successor starts before this one is drained.
    Recycle(String),
    /// Over `browser.memory-budget`: drained and closed before the successor starts.
    OverBudget(String),
}

/// Serves until Chromium dies, the service stops, or it is due for recycling.
async fn run(running: &mut Running, shutdown: &CancellationToken, opts: &BrowserOptions) -> Ended {
    let live = running.live.clone();
    let due = async {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            // Counting is free, so it is checked at every render start; reading /proc for
            // the memory budget only on the timer.
            let timer = tokio::select! {
                _ = tick.tick() => true,
                _ = live.render_started.notified() => false,
            };
            let renders = live.renders.load(Ordering::Relaxed);
            if opts.recycle_after > 0 && renders >= opts.recycle_after {
                return Ended::Recycle(format!("{renders} renders (browser.recycle-after)"));
            }
            if timer && opts.memory_budget_mib > 0 {
                let rss = memory::tree_rss_bytes(live.pid) / (1024 * 1024);
                if rss > opts.memory_budget_mib {
                    return Ended::OverBudget(format!(
                        "{rss} MiB in use (browser.memory-budget {} MiB)",
                        opts.memory_budget_mib
                    ));
                }
            }
        }
    };
    tokio::select! {
        _ = &mut running.handler => {
            if !shutdown.is_cancelled() {
                tracing::error!(pid = live.pid, generation = live.generation, "Chromium died; relaunching");
            }
            Ended::Died
        }
        _ = shutdown.cancelled() => {
            live.died.cancel();
            close_politely(&live, &mut running.handler).await;
            Ended::Shutdown
        }
        why = due => why,
    }
}

/// Lets a replaced browser finish its renders, then closes it.
async fn retire(mut old: Running) {
    let live = old.live.clone();
    let drained = async {
        while live.in_flight.load(Ordering::SeqCst) > 0 && !live.died.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(MAX_DRAIN, drained).await.is_err() {
        tracing::warn!(
            generation = live.generation,
            "renders still running after {MAX_DRAIN:?}; closing anyway"
        );
    }
    live.died.cancel();
    close_politely(&live, &mut old.handler).await;
    tokio::task::spawn_blocking(move || old.process.kill_tree())
        .await
        .ok();
    tracing::info!(generation = live.generation, "recycled Chromium closed");
}

/// Longest a recycled browser waits for its renders before it is closed.
const MAX_DRAIN: Duration = Duration::from_secs(600);

async fn close_politely(live: &LiveBrowser, handler: &mut JoinHandle<()>) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        live.cdp.execute(CloseParams::default()),
    )
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(3), &mut *handler).await;
    handler.abort();
}

/// Closes the blank tab Chromium opens at start in its default context, which no render uses:
/// it would keep a renderer process (~90 MiB RSS) for nothing (docs/adr/0012).
async fn close_initial_tabs(cdp: &chromiumoxide::Browser) {
    use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, GetTargetsParams};
    let Ok(Ok(targets)) = tokio::time::timeout(
        Duration::from_secs(5),
        cdp.execute(GetTargetsParams::default()),
    )
    .await
    else {
        return;
    };
    for target in targets
        .result
        .target_infos
        .iter()
        .filter(|t| t.r#type == "page")
    {
        let close = cdp.execute(CloseTargetParams::new(target.target_id.clone()));
        let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
    }
}

/// Launches Chromium, connects over CDP and starts polling the CDP handler.
async fn connect(
    opts: &BrowserOptions,
    generation: u64,
    shutdown: &CancellationToken,
) -> Result<(LiveBrowser, ChromiumProcess, JoinHandle<()>), String> {
    let (process, ws_url) = launch::launch(&opts.launch).await?;
    let config = HandlerConfig {
        ignore_https_errors: false,
        viewport: None,
        // Deadlines are enforced per request; this only bounds a lost CDP reply.
        request_timeout: Duration::from_secs(600),
        ..HandlerConfig::default()
    };
    let (cdp, mut handler) = chromiumoxide::Browser::connect_with_config(ws_url, config)
        .await
        .map_err(|e| format!("cannot connect to Chromium's DevTools socket: {e}"))?;
    // The handler must be polled in its own task and stop at the first error: after a
    // broken websocket it would otherwise stay pending forever (a known chromiumoxide pitfall).
    let closing = shutdown.clone();
    let handler_task = tokio::spawn(async move {
        while let Some(event) = handler.next().await {
            if let Err(e) = event {
                if closing.is_cancelled() {
                    tracing::debug!("CDP connection closed: {e}");
                } else {
                    tracing::warn!("CDP connection to Chromium ended: {e}");
                }
                break;
            }
        }
    });
    let version = match tokio::time::timeout(Duration::from_secs(10), cdp.version()).await {
        Ok(Ok(v)) => v.product,
        Ok(Err(e)) => return Err(format!("Chromium did not answer Browser.getVersion: {e}")),
        Err(_) => return Err("Chromium did not answer Browser.getVersion within 10s".into()),
    };
    close_initial_tabs(&cdp).await;
    let pid = process.pid();
    Ok((
        LiveBrowser {
            cdp,
            died: CancellationToken::new(),
            version,
            pid,
            generation,
            tabs: pool::TabPool::new(
                opts.tabs + opts.parked_tabs,
                opts.context_reuse,
                opts.tab_setup.clone(),
                opts.idle_timeout,
                opts.close_last_after,
                opts.contexts_opened.clone(),
            ),
            renders: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            render_started: tokio::sync::Notify::new(),
        },
        process,
        handler_task,
    ))
}
