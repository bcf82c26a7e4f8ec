//! Strict isolation: a brand-new Chromium for every render, as the official service
//! does — but launched ahead of time in the background, so the launch is not on the
//! request path. A filler task keeps a few connected spares; a render takes one, and
//! the browser is closed and its processes killed as soon as the render ends.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{BrowserOptions, BrowserState, Launcher, LiveBrowser, Running, close_politely};
use crate::error::RenderError;
use crate::request::{Deadline, Stage};

/// Spare browsers waiting for renders.
pub struct ProcessPool {
    spares: tokio::sync::Mutex<mpsc::Receiver<Running>>,
}

/// A browser that serves exactly one render; closed when dropped.
pub struct OneShot(Option<Running>);

impl OneShot {
    /// The browser.
    pub fn browser(&self) -> Option<&Arc<LiveBrowser>> {
        self.0.as_ref().map(|r| &r.live)
    }
}

impl Drop for OneShot {
    fn drop(&mut self) {
        if let Some(running) = self.0.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(close(running));
            }
            // Without a runtime, dropping `running` kills the process tree.
        }
    }
}

async fn close(mut running: Running) {
    running.live.died.cancel();
    close_politely(&running.live, &mut running.handler).await;
    let mut process = running.process;
    tokio::task::spawn_blocking(move || process.kill_tree())
        .await
        .ok();
}

impl ProcessPool {
    /// Starts a filler keeping `spares` browsers ready; returns the pool and the filler.
    pub fn start(
        opts: BrowserOptions,
        spares: usize,
        state: watch::Sender<BrowserState>,
        shutdown: CancellationToken,
    ) -> (ProcessPool, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(spares.max(1));
        let filler = tokio::spawn(fill(opts, tx, state, shutdown));
        (
            ProcessPool {
                spares: tokio::sync::Mutex::new(rx),
            },
            filler,
        )
    }

    /// Takes a spare browser for one render, waiting within `deadline` for one to launch.
    pub async fn take(&self, deadline: &Deadline) -> Result<OneShot, RenderError> {
        let take = async {
            let mut spares = self.spares.lock().await;
            loop {
                let Some(running) = spares.recv().await else {
                    return Err(RenderError::BrowserUnavailable(
                        "the service is shutting down".into(),
                    ));
                };
                if running.handler.is_finished() || running.live.died.is_cancelled() {
                    // Died while waiting: close what is left and take the next.
                    drop(OneShot(Some(running)));
                    continue;
                }
                return Ok(OneShot(Some(running)));
            }
        };
        deadline.run(Stage::StartingChromium, take).await?
    }

    /// Closes every spare (renders in progress close their own browser).
    pub async fn close(&self) {
        let mut spares = self.spares.lock().await;
        spares.close();
        while let Some(running) = spares.recv().await {
            close(running).await;
        }
    }
}

async fn fill(
    opts: BrowserOptions,
    tx: mpsc::Sender<Running>,
    state: watch::Sender<BrowserState>,
    shutdown: CancellationToken,
) {
    let mut launcher = Launcher::new(opts);
    loop {
        let permit = tokio::select! {
            permit = tx.reserve() => permit,
            _ = shutdown.cancelled() => return,
        };
        let Ok(permit) = permit else { return };
        let Some(running) = launcher.launch(&state, true, &shutdown).await else {
            return;
        };
        state.send_replace(BrowserState::Ready(running.live.clone()));
        permit.send(running);
        launcher.reset_backoff();
    }
}
