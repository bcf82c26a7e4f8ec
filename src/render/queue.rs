//! The render queue: bounded concurrency, and a refusal at arrival for requests that
//! cannot be answered before their deadline.
//!
//! Under an alert storm it is better to say "429, retry in N s" at once than to let a
//! request wait in line only to time out: Grafana then shows its "too many requests"
//! state immediately and the slots go to requests that can still make it. But every picture
//! that can be made in time should be: the estimate is the slots' measured service rate
//! (`concurrency` renders per moving-average render time), a request is admitted when its turn
//! (`ahead + 1` renders at that rate, taken a quarter faster) plus its own render fits in what
//! is left of its deadline, and judged again while it waits,
//! and before any render has finished (a freshly started service in a storm) requests are
//! admitted optimistically and judged again when they get their slot: a request whose slot
//! comes too late for a render of average length is refused then, without starting a render
//! that could not finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::RenderError;
use crate::metrics::Metrics;
use crate::request::{Deadline, Stage};

/// How often a waiting request checks whether its turn can still come in time.
const RECHECK: Duration = Duration::from_millis(50);

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
    /// One background render at a time.
    background: Semaphore,
    concurrency: usize,
    queue_size: usize,
    waiting: AtomicUsize,
    metrics: Arc<Metrics>,
    /// 0 until the first render finished.
    render_ms_avg: AtomicU64,
}

/// A running render's slot (and a background render's turn), given back when dropped.
pub struct Slot<'a> {
    _slot: SemaphorePermit<'a>,
    _background_turn: Option<SemaphorePermit<'a>>,
}

impl<'a> From<SemaphorePermit<'a>> for Slot<'a> {
    fn from(slot: SemaphorePermit<'a>) -> Self {
        Slot {
            _slot: slot,
            _background_turn: None,
        }
    }
}

impl RenderQueue {
    /// `concurrency` renders at once, `queue_size` waiting at most.
    pub fn new(concurrency: usize, queue_size: usize, metrics: Arc<Metrics>) -> Self {
        RenderQueue {
            slots: Semaphore::new(concurrency.max(1)),
            background: Semaphore::new(1),
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

    /// The moving average of a render's duration; `None` before the first render finished.
    fn render_estimate(&self) -> Option<Duration> {
        match self.render_ms_avg.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Waits for a slot, or refuses at once when the queue is full or the request could
    /// not finish before `deadline` after waiting its turn.
    pub async fn enter(&self, deadline: &Deadline) -> Result<Slot<'_>, RenderError> {
        if let Ok(slot) = self.slots.try_acquire() {
            return Ok(slot.into());
        }
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _leave = LeaveQueue(&self.waiting);
        let render = self.render_estimate();
        // The slots serve `concurrency` renders per average render time; this request's turn
        // comes after the `ahead` waiting before it and one more render ends. The rate is taken
        // a quarter faster than measured: renders vary, and a turn is judged again while it
        // waits, so optimism costs at most a later 429, never a late answer.
        let expected_wait =
            render.map(|r| r * 4 * (ahead as u32 + 1) / (5 * self.concurrency as u32));
        let retry_after = expected_wait.map_or(1, |w| w.as_secs().max(1));
        if ahead >= self.queue_size {
            self.metrics.queue_refused.inc();
            return Err(RenderError::Overloaded {
                reason: format!("{ahead} requests are already queued (render.queue-size)"),
                retry_after,
            });
        }
        if let (Some(render), Some(wait)) = (render, expected_wait)
            && wait + render > deadline.remaining()
        {
            self.metrics.queue_refused.inc();
            return Err(RenderError::Overloaded {
                reason: format!(
                    "it would wait about {:.1}s for a render slot and could not finish within its {:.1}s left",
                    wait.as_secs_f64(),
                    deadline.remaining().as_secs_f64()
                ),
                retry_after,
            });
        }
        let started = tokio::time::Instant::now();
        let slot = deadline
            .run(Stage::WaitingForSlot, self.wait_for_slot(deadline))
            .await;
        self.metrics
            .queue_wait_seconds
            .inc_by(started.elapsed().as_secs_f64());
        slot?
    }

    /// Waits for a slot for a background render (a scheduled report): it is taken only while
    /// no request waits and, with more than one slot, another stays free, and one background
    /// render runs at a time — so Grafana's own requests are never queued behind reports.
    pub async fn enter_background(&self, deadline: &Deadline) -> Result<Slot<'_>, RenderError> {
        let turn = deadline
            .run(Stage::WaitingForSlot, async {
                self.background
                    .acquire()
                    .await
                    .map_err(|_| RenderError::BrowserUnavailable("shutting down".into()))
            })
            .await??;
        let spare = usize::from(self.concurrency > 1);
        let slot = deadline
            .run(Stage::WaitingForSlot, async {
                loop {
                    if self.waiting.load(Ordering::SeqCst) == 0
                        && self.slots.available_permits() > spare
                        && let Ok(slot) = self.slots.try_acquire()
                    {
                        return slot;
                    }
                    tokio::time::sleep(RECHECK).await;
                }
            })
            .await?;
        Ok(Slot {
            _slot: slot,
            _background_turn: Some(turn),
        })
    }

    /// Waits for a slot while a render of average length can still end in time: admitted
    /// without a measurement, or on an estimate that proved wrong, a request whose turn comes
    /// too late is refused (429) rather than started, or left to time out.
    async fn wait_for_slot(&self, deadline: &Deadline) -> Result<Slot<'_>, RenderError> {
        let too_late = |render: Duration| {
            self.metrics.queue_refused.inc();
            RenderError::Overloaded {
                reason: format!(
                    "its turn for a render slot had not come with {:.1}s left, less than a render takes \
                     (about {:.1}s)",
                    deadline.remaining().as_secs_f64(),
                    render.as_secs_f64()
                ),
                retry_after: render.as_secs().max(1),
            }
        };
        let acquire = self.slots.acquire();
        tokio::pin!(acquire);
        let slot = loop {
            tokio::select! {
                slot = &mut acquire => break slot,
                _ = tokio::time::sleep(RECHECK) => {
                    if let Some(render) = self.render_estimate()
                        && render > deadline.remaining()
                    {
                        return Err(too_late(render));
                    }
                }
            }
        };
        let slot = slot
            .map_err(|_| RenderError::BrowserUnavailable("the service is shutting down".into()))?;
        match self.render_estimate() {
            Some(render) if render > deadline.remaining() => Err(too_late(render)),
            _ => Ok(slot.into()),
        }
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
        // 1.6 s of waiting (2 s taken a quarter faster) + 2 s of rendering do not fit in 3 s.
        let short = Deadline::after(Duration::from_secs(3));
        match q.enter(&short).await {
            Err(RenderError::Overloaded { retry_after, .. }) => assert_eq!(retry_after, 1),
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

    #[tokio::test]
    async fn the_turn_is_judged_by_the_slots_service_rate() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let q = RenderQueue::new(4, 100, metrics.clone());
        q.record_render(Duration::from_millis(600));
        let long = Deadline::after(Duration::from_secs(60));
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(q.enter(&long).await.expect("free slot"));
        }
        // Four slots serve a 0.6 s render every 0.15 s, taken as every 0.12 s: 37 waiting ahead
        // → a turn after 4.56 s, plus its own 0.6 s, fits in 5.2 s; 41 ahead (5.04 s) does not.
        q.waiting.store(37, Ordering::SeqCst);
        let five = Deadline::after(Duration::from_millis(5200));
        let waiter = q.enter(&five);
        let waiting = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert_eq!(q.stats().waiting, 38, "admitted to wait its turn");
            q.waiting.store(41, Ordering::SeqCst);
            let late = q.enter(&Deadline::after(Duration::from_millis(5200))).await;
            assert!(matches!(late, Err(RenderError::Overloaded { .. })));
            q.waiting.store(1, Ordering::SeqCst);
            drop(held.pop());
        };
        let (slot, ()) = tokio::join!(waiter, waiting);
        assert!(slot.is_ok());
        assert_eq!(metrics.queue_refused.get(), 1);
    }

    #[tokio::test]
    async fn background_renders_leave_a_slot_free_and_yield_to_waiting_requests() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let q = RenderQueue::new(2, 100, metrics);
        let long = Deadline::after(Duration::from_secs(60));
        // Both slots free: a background render takes one, never the last.
        let report = q.enter_background(&long).await.expect("a free slot");
        assert_eq!(q.stats().in_flight, 1);
        let second = tokio::time::timeout(Duration::from_millis(200), q.enter_background(&long));
        assert!(second.await.is_err(), "one background render at a time");
        // An interactive request still finds the other slot at once.
        let alert = tokio::time::timeout(Duration::from_millis(50), q.enter(&long))
            .await
            .expect("not queued behind the report")
            .expect("a slot");
        drop(report);
        // With a request waiting, a background render waits even though a slot is free.
        let busy = q.enter(&long).await.expect("the freed slot");
        q.waiting.store(1, Ordering::SeqCst);
        drop(alert);
        let blocked = tokio::time::timeout(Duration::from_millis(200), q.enter_background(&long));
        assert!(blocked.await.is_err(), "yields to the waiting request");
        q.waiting.store(0, Ordering::SeqCst);
        drop(busy);
        assert!(q.enter_background(&long).await.is_ok());
    }

    #[tokio::test]
    async fn without_a_measurement_requests_wait_and_are_refused_once_too_late() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let q = RenderQueue::new(1, 100, metrics.clone());
        let held = q.enter(&Deadline::after(Duration::from_secs(60))).await;
        // A fresh service knows no render time: a short deadline still waits its turn.
        let short = Deadline::after(Duration::from_millis(700));
        let waiter = q.enter(&short);
        let finish = async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(q.stats().waiting, 1, "admitted optimistically");
            // The first render ends: it took 0.5 s, more than the 0.3 s the waiter has left.
            q.record_render(Duration::from_millis(500));
            drop(held);
        };
        let (slot, ()) = tokio::join!(waiter, finish);
        match slot {
            Err(RenderError::Overloaded { reason, .. }) => {
                assert!(reason.contains("had not come"), "{reason}")
            }
            other => panic!(
                "expected a refusal at the slot, got {:?}",
                other.map(|_| ())
            ),
        }
        assert_eq!(metrics.queue_refused.get(), 1);
        // No slot was taken by it.
        assert!(
            q.enter(&Deadline::after(Duration::from_secs(5)))
                .await
                .is_ok()
        );
    }
}
