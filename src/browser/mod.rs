//! One long-lived, supervised Chromium shared by all renders.
//!
//! The supervisor task launches Chromium, publishes it as [`BrowserState::Ready`], and
//! watches the CDP connection. When the connection breaks (Chromium crashed or was
//! killed) it cancels the browser's `died` token, so every render using it fails at
//! once, kills and reaps what is left of the tree, and launches a new one with backoff.

pub mod launch;
pub mod pool;

use std::sync::Arc;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::browser::CloseParams;
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use launch::ChromiumProcess;
pub use launch::LaunchOptions;

use crate::error::RenderError;
use crate::request::Deadline;

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
}

impl BrowserSupervisor {
    /// Starts the supervisor; the first launch begins at once in the background.
    pub fn start(opts: BrowserOptions) -> Arc<Self> {
        let (tx, rx) = watch::channel(BrowserState::Starting);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(supervise(opts, tx, shutdown.clone()));
        Arc::new(BrowserSupervisor {
            state: rx,
            shutdown,
            task: std::sync::Mutex::new(Some(task)),
        })
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
                    BrowserState::Ready(b) if !b.died.is_cancelled() => return Ok(b.clone()),
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
        deadline.run("waiting for Chromium to start", wait).await?
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
    let mut generation = 0u64;
    let mut backoff = Duration::from_millis(250);
    while !shutdown.is_cancelled() {
        generation += 1;
        let started = tokio::time::Instant::now();
        match connect(&opts, generation, &shutdown).await {
            Ok((live, mut process, handler_task)) => {
                tracing::info!(pid = live.pid, version = %live.version, generation, "Chromium is ready");
                let live = Arc::new(live);
                pool::watch_crashes(&live);
                pool::prewarm(&live, 1).await;
                state.send_replace(BrowserState::Ready(live.clone()));
                run_until_death(&live, handler_task, &shutdown).await;
                live.died.cancel();
                state.send_replace(if shutdown.is_cancelled() {
                    BrowserState::Stopped
                } else {
                    BrowserState::Starting
                });
                tokio::task::spawn_blocking(move || process.kill_tree())
                    .await
                    .ok();
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(250);
                }
            }
            Err(msg) => {
                tracing::error!(generation, "cannot start Chromium: {msg}");
                state.send_replace(BrowserState::Failed(msg));
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => break,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
    state.send_replace(BrowserState::Stopped);
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
    // broken websocket it would otherwise stay pending forever (STACK.md pitfall 1).
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
    let pid = process.pid();
    Ok((
        LiveBrowser {
            cdp,
            died: CancellationToken::new(),
            version,
            pid,
            generation,
            tabs: pool::TabPool::new(opts.tabs, opts.context_reuse),
        },
        process,
        handler_task,
    ))
}

/// Returns when Chromium died or, on shutdown, after closing it politely.
async fn run_until_death(
    live: &LiveBrowser,
    mut handler_task: JoinHandle<()>,
    shutdown: &CancellationToken,
) {
    tokio::select! {
        _ = &mut handler_task => {
            if !shutdown.is_cancelled() {
                tracing::error!(pid = live.pid, generation = live.generation, "Chromium died; relaunching");
            }
        }
        _ = shutdown.cancelled() => {
            live.died.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), live.cdp.execute(CloseParams::default())).await;
            let _ = tokio::time::timeout(Duration::from_secs(3), &mut handler_task).await;
            handler_task.abort();
        }
    }
}
