//! The one deadline of a request, and the stages its time is spent in.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::RenderError;
use crate::stage::Stage;

/// The stage a render is in, so a deadline error can say where the time went, and how long
/// each stage took (for the step-duration metric and the request's log line).
#[derive(Debug)]
pub struct Progress(Mutex<Vec<(Stage, std::time::Instant)>>);

impl Progress {
    /// Starts at `stage`.
    pub fn new(stage: Stage) -> Self {
        Progress(Mutex::new(vec![(stage, std::time::Instant::now())]))
    }
    /// Moves to `stage`.
    pub fn set(&self, stage: Stage) {
        if let Ok(mut s) = self.0.lock() {
            s.push((stage, std::time::Instant::now()));
        }
    }
    /// The current stage.
    pub fn get(&self) -> Stage {
        self.0
            .lock()
            .ok()
            .and_then(|s| s.last().map(|(stage, _)| *stage))
            .unwrap_or(Stage::WaitingForSlot)
    }
    /// Whether the render ever reached `stage`.
    pub fn reached(&self, stage: Stage) -> bool {
        self.0
            .lock()
            .map(|s| s.iter().any(|(st, _)| *st == stage))
            .unwrap_or(false)
    }
    /// Each stage with the time spent in it (the last one until now).
    pub fn steps(&self) -> Vec<(Stage, Duration)> {
        let Ok(s) = self.0.lock() else {
            return Vec::new();
        };
        let now = std::time::Instant::now();
        s.iter()
            .enumerate()
            .map(|(i, (stage, at))| {
                let end = s.get(i + 1).map(|(_, next)| *next).unwrap_or(now);
                (*stage, end.duration_since(*at))
            })
            .collect()
    }
}

/// The single deadline of a request: queueing, launch waits, navigation, readiness and
/// capture all draw on the same budget.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline {
            start: Instant::now(),
            budget,
        }
    }

    /// The instant it passes.
    pub fn at(&self) -> Instant {
        self.start + self.budget
    }

    /// Time since the request arrived.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at().saturating_duration_since(Instant::now())
    }

    /// The error for having run out while doing `stage`.
    pub fn expired(&self, stage: Stage) -> RenderError {
        RenderError::Deadline {
            stage,
            elapsed: self.start.elapsed(),
            budget: self.budget,
        }
    }

    /// Runs `fut` unless the deadline passes first.
    pub async fn run<T>(
        &self,
        stage: Stage,
        fut: impl Future<Output = T>,
    ) -> Result<T, RenderError> {
        tokio::time::timeout_at(self.at(), fut)
            .await
            .map_err(|_| self.expired(stage))
    }
}
