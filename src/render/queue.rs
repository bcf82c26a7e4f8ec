//! The render queue: bounded concurrency, and a refusal at arrival for requests that
//! cannot be answered before their deadline.
//!
//! Under an alert storm it is better to say "429, retry in N s" at once than to let a
//! request wait in line only to time out: Grafana then shows its "too many requests"
//! state immediately and the slots go to requests that can still make it. The estimate
//! uses a moving average of recent render times.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::RenderError;
use crate::metrics::Metrics;
use crate::request::{Deadline, Stage};

/// Render time assumed before any render has finished.
const FIRST_ESTIMATE: Duration = Duration::from_millis(1000);

/// The queue's state now (its counters are metrics, counted where they happen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Requests waiting for a slot now.
    pub waiting: usize,
    /// Renders running now.
    pub in_flight: usize,
    /// Moving average of a render's duration, in milliseconds.
    pub render_ms_avg: u64,
}

/// See the module docs.
pub struct RenderQueue {
    slots: Semaphore,
    concurrency: usize,
    queue_size: usize,
    waiting: AtomicUsize,
    metrics: Arc<Metrics>,
    /// 0 until the first render finished.
    render_ms_avg: AtomicU64,
}

/// A running render's slot.
pub type Slot<'a> = SemaphorePermit<'a>;

impl RenderQueue {
    /// `concurrency` renders at once, `queue_size` waiting at most.
    pub fn new(concurrency: usize, queue_size: usize, metrics: Arc<Metrics>) -> Self {
        RenderQueue {
            slots: Semaphore::new(concurrency.max(1)),
            concurrency: concurrency.max(1),
            queue_size,
            waiting: AtomicUsize::new(0),
            metrics,
            render_ms_avg: AtomicU64::new(0),
        }
    }

    /// The current numbers.
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            waiting: self.waiting.load(Ordering::Relaxed),
            in_flight: self.concurrency - self.slots.available_permits(),
            render_ms_avg: self.render_ms_avg.load(Ordering::Relaxed),
        }
    }

    /// Notes how long a render took, for the wait estimate.
    pub fn record_render(&self, took: Duration) {
        let sample = took.as_millis().min(u64::MAX as u128) as u64;
        let _ = self
            .render_ms_avg
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == 0 {
                    sample.max(1)
                } else {
                    (avg * 4 + sample) / 5
                })
            });
    }

    fn render_estimate(&self) -> Duration {
        match self.render_ms_avg.load(Ordering::Relaxed) {
            0 => FIRST_ESTIMATE,
            ms => Duration::from_millis(ms),
        }
    }

    /// Waits for a slot, or refuses at once when the queue is full or the request could
    /// not finish before `deadline` after waiting its turn.
    pub async fn enter(&self, deadline: &Deadline) -> Result<Slot<'_>, RenderError> {
        if let Ok(slot) = self.slots.try_acquire() {
            return Ok(slot);
        }
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _leave = LeaveQueue(&self.waiting);
        let render = self.render_estimate();
        // Everyone ahead (and this request) is served `concurrency` at a time.
        let expected_wait = render * (ahead / self.concurrency + 1) as u32;
        let retry_after = expected_wait.as_secs().max(1);
        if ahead >= self.queue_size {
            self.metrics.queue_refused.inc();
            return Err(RenderError::Overloaded {
                reason: format!("{ahead} requests are already queued (render.queue-size)"),
                retry_after,
            });
        }
        if expected_wait + render > deadline.remaining() {
            self.metrics.queue_refused.inc();
            return Err(RenderError::Overloaded {
                reason: format!(
                    "it would wait about {:.1}s for a render slot and could not finish within its {:.1}s left",
                    expected_wait.as_secs_f64(),
                    deadline.remaining().as_secs_f64()
                ),
                retry_after,
            });
        }
        let started = tokio::time::Instant::now();
        let slot = deadline
            .run(Stage::WaitingForSlot, self.slots.acquire())
            .await;
        self.metrics
            .queue_wait_seconds
            .inc_by(started.elapsed().as_secs_f64());
        slot?.map_err(|_| RenderError::BrowserUnavailable("the service is shutting down".into()))
    }
}

/// Decrements the queue count however the wait ends.
struct LeaveQueue<'a>(&'a AtomicUsize);

impl Drop for LeaveQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_what_cannot_finish_in_time_and_what_does_not_fit() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let q = RenderQueue::new(1, 1, metrics.clone());
        q.record_render(Duration::from_secs(2));
        let long = Deadline::after(Duration::from_secs(60));
        let held = q.enter(&long).await.expect("free slot");
        // 2 s of waiting + 2 s of rendering do not fit in 3 s.
        let short = Deadline::after(Duration::from_secs(3));
        match q.enter(&short).await {
            Err(RenderError::Overloaded { retry_after, .. }) => assert_eq!(retry_after, 2),
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
        // Fits: waits, and gets the slot when it is freed.
        let waiter = q.enter(&long);
        let release = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(q.stats().waiting, 1);
            // A second waiter does not fit in a queue of one.
            assert!(matches!(
                q.enter(&long).await,
                Err(RenderError::Overloaded { .. })
            ));
            drop(held);
        };
        let (slot, ()) = tokio::join!(waiter, release);
        assert!(slot.is_ok());
        let stats = q.stats();
        assert_eq!((stats.in_flight, stats.waiting), (1, 0));
        assert_eq!(metrics.queue_refused.get(), 2);
        assert!(metrics.queue_wait_seconds.get() > 0.0);
    }
}
