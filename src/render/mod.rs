//! One render job: coalescing with identical requests, a queue slot, a browser, the
//! page steps, all under one deadline.

pub(crate) mod coalesce;
pub(crate) mod identity;
pub(crate) mod queue;

use std::sync::Arc;

use crate::browser::BrowserSupervisor;
use crate::error::RenderError;
use crate::page::{self, Capture, PageOptions};
use crate::request::{Priority, Progress, RenderRequest, Stage};
use identity::Identity;

/// How long a failed CDP call waits to learn whether the browser died.
const BROWSER_DEATH_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// Runs renders with bounded concurrency and a bounded queue.
pub struct Renderer {
    browsers: Arc<BrowserSupervisor>,
    queue: queue::RenderQueue,
    page: PageOptions,
    coalescer: Arc<coalesce::Coalescer>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Renderer {
    /// `concurrency` renders run at once; up to `queue_size` more wait.
    pub fn new(
        browsers: Arc<BrowserSupervisor>,
        concurrency: usize,
        queue_size: usize,
        page: PageOptions,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Renderer {
            browsers,
            queue: queue::RenderQueue::new(concurrency, queue_size, metrics.clone()),
            page,
            coalescer: Arc::default(),
            metrics,
        }
    }

    /// Queue depth, in-flight renders and the render-time estimate.
    pub fn queue_stats(&self) -> queue::QueueStats {
        self.queue.stats()
    }

    /// Renders `req` for `identity`, sharing the render with identical requests in flight.
    pub async fn render(
        self: &Arc<Self>,
        req: RenderRequest,
        identity: Identity,
    ) -> coalesce::SharedOutcome {
        let deadline = req.deadline;
        let viewer = identity.viewer();
        let key = coalesce::PictureKey::of(&req, identity);
        let this = self.clone();
        let (outcome, started) = self.coalescer.join_or_start(key, async move {
            this.render_alone(&req, viewer.as_deref())
                .await
                .map(Arc::new)
                .map_err(Arc::new)
        });
        if started {
            // The render itself runs under this request's deadline and says where it ran out.
            return outcome.await;
        }
        self.metrics.coalesced.inc();
        match tokio::time::timeout_at(deadline.at(), outcome).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Arc::new(deadline.expired(Stage::WaitingForIdenticalRender))),
        }
    }

    /// Renders `req` within its deadline, without sharing.
    async fn render_alone(
        &self,
        req: &RenderRequest,
        viewer: Option<&str>,
    ) -> Result<Capture, RenderError> {
        let deadline = req.deadline;
        let progress = Progress::new(Stage::WaitingForSlot);
        let _slot = match req.priority {
            Priority::Interactive => self.queue.enter(&deadline).await?,
            Priority::Background => self.queue.enter_background(&deadline).await?,
        };
        let started = tokio::time::Instant::now();
        progress.set(Stage::WaitingForChromium);
        let lease = self.browsers.acquire(&deadline).await?;
        let browser = lease.browser();
        self.metrics.browser_renders.inc();
        let work = async {
            let (result, reuse) = page::render(browser, req, &self.page, &progress, viewer).await;
            self.metrics
                .app_reuse
                .with_label_values(&[reuse.outcome(), reuse.reason()])
                .inc();
            if let Ok(Some(kept)) = result.as_ref().map(|c| c.early) {
                let outcome = if kept { "kept" } else { "discarded" };
                self.metrics
                    .early_capture
                    .with_label_values(&[outcome])
                    .inc();
            }
            result
        };
        let result = tokio::select! {
            result = work => result,
            _ = browser.died.cancelled() => Err(RenderError::BrowserDied),
            _ = tokio::time::sleep_until(deadline.at()) => Err(deadline.expired(progress.get())),
        };
        if let Ok(capture) = &result {
            self.queue.record_render(started.elapsed());
            self.metrics
                .browser_render_duration
                .observe(started.elapsed().as_secs_f64());
            self.metrics
                .readiness_mode
                .with_label_values(&[capture.mode.label()])
                .inc();
        }
        let steps = progress.steps();
        self.metrics.observe_steps(&steps);
        let result = result.map(|capture| Capture { steps, ..capture });
        match result {
            // A CDP call can fail a moment before the supervisor notices the browser's
            // death; name the real cause.
            Err(RenderError::Browser { .. })
                if tokio::time::timeout(BROWSER_DEATH_GRACE, browser.died.cancelled())
                    .await
                    .is_ok() =>
            {
                Err(RenderError::BrowserDied)
            }
            Err(RenderError::LoginPage { url, .. }) => Err(RenderError::LoginPage {
                url,
                elapsed: deadline.elapsed(),
            }),
            other => other,
        }
    }
}
