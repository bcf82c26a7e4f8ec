//! One render job: a queue slot, a browser, the page steps, all under one deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::browser::BrowserSupervisor;
use crate::error::RenderError;
use crate::page::{self, Capture, PageOptions, Progress};
use crate::request::{Deadline, RenderRequest};

/// How long a failed CDP call waits to learn whether the browser died.
const BROWSER_DEATH_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// Runs renders with bounded concurrency and a bounded queue.
pub struct Renderer {
    browsers: Arc<BrowserSupervisor>,
    slots: Semaphore,
    waiting: AtomicUsize,
    queue_size: usize,
    page: PageOptions,
}

impl Renderer {
    /// `concurrency` renders run at once; up to `queue_size` more wait.
    pub fn new(
        browsers: Arc<BrowserSupervisor>,
        concurrency: usize,
        queue_size: usize,
        page: PageOptions,
    ) -> Self {
        Renderer {
            browsers,
            slots: Semaphore::new(concurrency.max(1)),
            waiting: AtomicUsize::new(0),
            queue_size,
            page,
        }
    }

    /// The browser supervisor, for health and version answers.
    pub fn browsers(&self) -> &Arc<BrowserSupervisor> {
        &self.browsers
    }

    /// Renders `req` to a PNG within its deadline.
    pub async fn render(&self, req: &RenderRequest) -> Result<Capture, RenderError> {
        let deadline = req.deadline;
        let progress = Progress::new("waiting for a render slot");
        let _slot = self.acquire_slot(&deadline).await?;
        progress.set("waiting for Chromium");
        let browser = self.browsers.current(&deadline).await?;
        let work = page::render_png(&browser, req, &self.page, &progress);
        let result = tokio::select! {
            result = work => result,
            _ = browser.died.cancelled() => Err(RenderError::BrowserDied),
            _ = tokio::time::sleep_until(deadline.at()) => Err(deadline.expired(progress.get())),
        };
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
            other => other,
        }
    }

    async fn acquire_slot(&self, deadline: &Deadline) -> Result<SemaphorePermit<'_>, RenderError> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _leave = LeaveQueue(&self.waiting);
        if waiting >= self.queue_size {
            return Err(RenderError::QueueFull { waiting });
        }
        let permit = deadline
            .run(
                "waiting for a render slot (all are busy)",
                self.slots.acquire(),
            )
            .await?;
        permit.map_err(|_| RenderError::BrowserUnavailable("the service is shutting down".into()))
    }
}

/// Decrements the queue count however the wait ends.
struct LeaveQueue<'a>(&'a AtomicUsize);

impl Drop for LeaveQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
