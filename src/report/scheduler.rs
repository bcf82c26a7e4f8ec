//! The scheduler: while this process holds the history database's lease, it starts each
//! report's run when it falls due (once: a run is claimed in the database before it starts),
//! catches up a run missed while the service was down (within `catch_up`), and retries failed
//! attempts with backoff until they are sent or end as failed, with the reason kept.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::task::JoinHandle;

use super::Reports;
use super::history::{Claim, backoff};

/// How often the scheduler looks at the clock, the file and the database.
const TICK: Duration = Duration::from_secs(5);
/// The lease is renewed every tick; another replica may take it this long after we stop.
const LEASE_SECS: i64 = 60;
/// A run left "sending" this long by a process that died is taken up again.
const STALE_SECS: i64 = 15 * 60;
/// Finished runs are kept this long (the latest of each report always).
const KEEP_SECS: i64 = 400 * 24 * 3600;
/// How often finished runs are pruned.
const PRUNE_EVERY_SECS: i64 = 3600;

/// What this process already settled, so a tick touches the database only when something is
/// new: the latest due time handled per report, and when finished runs were last pruned.
#[derive(Default)]
pub(crate) struct Handled {
    due: Mutex<HashMap<String, i64>>,
    pruned_at: AtomicI64,
}

impl Handled {
    fn is_handled(&self, report: &str, due: i64) -> bool {
        self.due
            .lock()
            .map(|m| m.get(report) == Some(&due))
            .unwrap_or(false)
    }

    fn handle(&self, report: &str, due: i64) {
        if let Ok(mut m) = self.due.lock() {
            m.insert(report.to_string(), due);
        }
    }

    /// Whether it is time to prune again (once an hour).
    fn prune_due(&self, now: i64) -> bool {
        let last = self.pruned_at.load(Ordering::Relaxed);
        now - last >= PRUNE_EVERY_SECS
            && self
                .pruned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Run ids being worked on by this process (never started twice at once).
#[derive(Default)]
pub(crate) struct InFlight(Mutex<HashSet<i64>>);

impl InFlight {
    fn start(&self, id: i64) -> bool {
        self.0.lock().map(|mut s| s.insert(id)).unwrap_or(false)
    }

    fn end(&self, id: i64) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(&id);
        }
    }
}

/// Runs the scheduler until the process ends.
pub(crate) async fn run(reports: Arc<Reports>) {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        reports.reload_if_changed(false);
        if let Err(e) = tick(&reports).await {
            tracing::error!(error = %e, "reports: scheduler step failed");
        }
        #[cfg(unix)]
        if let Some(hangup) = hangup.as_mut() {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = hangup.recv() => reports.reload_if_changed(true),
            }
            continue;
        }
        tokio::time::sleep(TICK).await;
    }
}

/// One look at the clock: takes or renews the lease, then starts what is due; returns the
/// runs it started.
pub(crate) async fn tick(reports: &Arc<Reports>) -> Result<Vec<JoinHandle<()>>, String> {
    let now = reports.now();
    let mut started = Vec::new();
    let history = reports.history.clone();
    let holds = blocking(move || history.acquire_lease(now.timestamp(), LEASE_SECS)).await?;
    reports.set_active(holds);
    if !holds {
        return Ok(started);
    }
    let config = reports.config();
    for report in &config.reports {
        let Some(due) = report.schedule.last_at_or_before(now) else {
            continue;
        };
        if reports.handled.is_handled(&report.name, due.timestamp()) {
            continue;
        }
        let history = reports.history.clone();
        let name = report.name.clone();
        let first_seen = blocking(move || history.first_seen(&name, now.timestamp())).await?;
        if due.timestamp() < first_seen {
            // Due before the report was in the file: never sent for that.
            reports.handled.handle(&report.name, due.timestamp());
            continue;
        }
        let history = reports.history.clone();
        let name = report.name.clone();
        let claim =
            blocking(move || history.claim(&name, due.timestamp(), now.timestamp())).await?;
        // Claimed (by us or another process): nothing more to do for this due time.
        reports.handled.handle(&report.name, due.timestamp());
        let Claim::New(id) = claim else {
            continue;
        };
        let late = now - due;
        if late.to_std().unwrap_or_default() > config.catch_up {
            let reason = format!(
                "missed: due at {due} while the service was down, more than catch_up ({}s) ago",
                config.catch_up.as_secs()
            );
            tracing::warn!(report = %report.name, %due, "reports: {reason}");
            reports.count(&report.name, "missed");
            let history = reports.history.clone();
            blocking(move || history.mark_failed(id, &reason, None, now.timestamp())).await?;
            continue;
        }
        started.extend(spawn_run(reports, id, report.name.clone(), due));
    }
    if reports.handled.prune_due(now.timestamp()) {
        let history = reports.history.clone();
        let keep_after = now.timestamp() - KEEP_SECS;
        blocking(move || history.prune(keep_after)).await?;
    }
    let history = reports.history.clone();
    let retries = blocking(move || history.due_retries(now.timestamp(), STALE_SECS)).await?;
    for run in retries {
        if let Some(due) = Utc.timestamp_opt(run.due, 0).single() {
            started.extend(spawn_run(reports, run.id, run.report, due));
        }
    }
    Ok(started)
}

fn spawn_run(
    reports: &Arc<Reports>,
    id: i64,
    name: String,
    due: DateTime<Utc>,
) -> Option<JoinHandle<()>> {
    if !reports.in_flight.start(id) {
        return None;
    }
    let reports = reports.clone();
    Some(tokio::spawn(async move {
        if let Err(e) = attempt(&reports, id, &name, due).await {
            tracing::error!(report = %name, error = %e, "reports: the run history could not be updated");
        }
        reports.in_flight.end(id);
    }))
}

/// One attempt of run `id`: sent, or failed with a retry planned, or failed for good.
async fn attempt(
    reports: &Arc<Reports>,
    id: i64,
    name: &str,
    due: DateTime<Utc>,
) -> Result<(), String> {
    let history = reports.history.clone();
    let started = reports.now().timestamp();
    let attempt = blocking(move || history.begin_attempt(id, started)).await?;
    let config = reports.config();
    let outcome = match config.reports.iter().find(|r| r.name == name) {
        Some(report) => {
            tracing::info!(report = name, %due, attempt, "reports: sending");
            match super::run::compose(&reports.service, report, due, None).await {
                Ok(letter) => super::run::deliver(&config.smtp, &letter).await,
                Err(e) => Err(e),
            }
        }
        None => Err("the report is no longer in the reports file".into()),
    };
    let now = reports.now().timestamp();
    let history = reports.history.clone();
    match outcome {
        Ok(()) => {
            tracing::info!(report = name, %due, attempt, "reports: sent");
            reports.count(name, "sent");
            blocking(move || history.mark_sent(id, now)).await
        }
        Err(reason) if attempt < config.attempts => {
            let wait = backoff(attempt, config.backoff.as_secs().max(1) as i64, 3600);
            tracing::warn!(report = name, %due, attempt, retry_in_secs = wait, error = %reason, "reports: attempt failed; will retry");
            reports.count(name, "retrying");
            blocking(move || history.mark_failed(id, &reason, Some(now + wait), now)).await
        }
        Err(reason) => {
            tracing::error!(report = name, %due, attempt, error = %reason, "reports: failed; giving up");
            reports.count(name, "failed");
            blocking(move || history.mark_failed(id, &reason, None, now)).await
        }
    }
}

/// Runs a database call off the async threads.
async fn blocking<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("report history task: {e}"))?
        .map_err(|e| e.to_string())
}
