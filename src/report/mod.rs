//! Scheduled dashboard reports by e-mail (`--reports FILE`): an adapter beside the HTTP API
//! and the plugin, using the same service (and its queue, behind Grafana's own requests).
//!
//! | Module | Its one job |
//! |---|---|
//! | `config` | the reports file: SMTP, reports, checked with the line of each mistake |
//! | `schedule` | when a report is due (cron or helpers, in its time zone) and the range it covers |
//! | `template` | `{{title}}`-style subjects and messages |
//! | `run` | one run: render through the service, compose the e-mail |
//! | `mail` | the MIME message and its delivery over SMTP |
//! | `history` | the SQLite run history: claims, retries, the scheduler's lease |
//! | `scheduler` | starts due runs once, catches up, retries with backoff |

mod config;
mod history;
mod mail;
mod run;
mod schedule;
mod scheduler;
mod template;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use chrono::Utc;

use crate::service::Service;
use config::ReportsConfig;
use history::History;

/// What time it is for the scheduler: the system clock, or a test's.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<Utc> + Send + Sync>;

/// The reports of one reports file, and their scheduler's state.
pub struct Reports {
    path: PathBuf,
    clock: Clock,
    config: RwLock<(Arc<ReportsConfig>, Option<SystemTime>)>,
    history: Arc<History>,
    service: Arc<Service>,
    active: AtomicBool,
    in_flight: scheduler::InFlight,
    handled: scheduler::Handled,
}

impl Reports {
    /// Reads the reports file and opens (or creates) its history database.
    pub fn open(path: &Path, service: Arc<Service>) -> Result<Arc<Reports>, String> {
        Self::open_with_clock(path, service, Arc::new(Utc::now))
    }

    /// [`Reports::open`] with the scheduler reading `clock` (tests move time on).
    pub fn open_with_clock(
        path: &Path,
        service: Arc<Service>,
        clock: Clock,
    ) -> Result<Arc<Reports>, String> {
        let config = config::load(path, &|k| std::env::var(k).ok())?;
        let holder = format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let history = History::open(&config.history, &holder).map_err(|e| e.to_string())?;
        Ok(Arc::new(Reports {
            path: path.to_path_buf(),
            clock,
            config: RwLock::new((Arc::new(config), modified(path))),
            history: Arc::new(history),
            service,
            active: AtomicBool::new(false),
            in_flight: Default::default(),
            handled: Default::default(),
        }))
    }

    /// Starts the scheduler in the background.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(scheduler::run(self.clone()));
    }

    /// One step of the scheduler now (by its clock), waiting for the runs it started: what
    /// the background scheduler does every few seconds, for tests and a manual catch-up.
    pub async fn tick_and_wait(self: &Arc<Self>) -> Result<(), String> {
        self.reload_if_changed(false);
        for run in scheduler::tick(self).await? {
            let _ = run.await;
        }
        Ok(())
    }

    /// Sends report `name` now (not recorded as a scheduled run), to `to` instead of its
    /// recipients when given.
    pub async fn send_now(&self, name: &str, to: Option<&str>) -> Result<String, String> {
        let config = self.config();
        let report = config
            .reports
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("no report is named {name:?} in {}", self.path.display()))?;
        let to = match to {
            Some(a) => {
                Some(vec![a.parse().map_err(|e| {
                    format!("--to {a:?} is not an e-mail address ({e})")
                })?])
            }
            None => None,
        };
        let letter = run::compose(&self.service, report, self.now(), to.as_deref()).await?;
        run::deliver(&config.smtp, &letter).await?;
        let recipients: Vec<String> = letter.to.iter().map(ToString::to_string).collect();
        Ok(format!(
            "sent {name:?} to {} ({})",
            recipients.join(", "),
            letter
                .attachments
                .iter()
                .chain(letter.inline.as_ref())
                .map(|p| format!("{}, {} bytes", p.name, p.bytes.len()))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }

    /// Each report: schedule, next run, the last run's result; and whether this process is
    /// the one scheduling (it holds the database's lease).
    pub fn status(&self) -> serde_json::Value {
        let config = self.config();
        let latest = self.history.latest_runs().unwrap_or_default();
        let now = self.now();
        let reports: Vec<serde_json::Value> = config
            .reports
            .iter()
            .map(|r| {
                let last = latest.iter().find(|run| run.report == r.name).map(|run| {
                    serde_json::json!({
                        "due": at(run.due),
                        "state": run.state.as_str(),
                        "finished": run.state.is_final(),
                        "attempts": run.attempts,
                        "error": run.last_error,
                        "sent_at": run.sent_at.map(at),
                        "retry_at": run.retry_at.map(at),
                    })
                });
                serde_json::json!({
                    "name": r.name,
                    "schedule": r.schedule.describe(),
                    "format": r.format.label(),
                    "recipients": r.recipients.len(),
                    "next_run": r.schedule.next_after(now).map(|t| t.to_rfc3339()),
                    "last_run": last,
                })
            })
            .collect();
        serde_json::json!({
            "file": self.path.display().to_string(),
            "history": self.history.path().display().to_string(),
            "scheduling": self.active.load(Ordering::Relaxed),
            "reports": reports,
        })
    }

    /// Gives up scheduling (at shutdown), so another replica can take over at once.
    pub fn release(&self) {
        if let Err(e) = self.history.release_lease() {
            tracing::warn!(error = %e, "reports: could not release the history's lease");
        }
    }

    fn now(&self) -> chrono::DateTime<Utc> {
        (self.clock)()
    }

    fn config(&self) -> Arc<ReportsConfig> {
        match self.config.read() {
            Ok(c) => c.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    /// Reads the file again when it changed (or `force`, on SIGHUP); a file with a mistake
    /// is logged and the last good one kept.
    fn reload_if_changed(&self, force: bool) {
        let stamp = modified(&self.path);
        let unchanged = self.config.read().map(|c| c.1 == stamp).unwrap_or(false);
        if unchanged && !force {
            return;
        }
        match config::load(&self.path, &|k| std::env::var(k).ok()) {
            Ok(new) => {
                if new.history != self.config().history {
                    tracing::warn!("reports: a changed history path takes effect after a restart");
                }
                tracing::info!(reports = new.reports.len(), "reports: file reloaded");
                if let Ok(mut c) = self.config.write() {
                    *c = (Arc::new(new), stamp);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reports: the changed file has a mistake; keeping the last good one");
                if let Ok(mut c) = self.config.write() {
                    c.1 = stamp;
                }
            }
        }
    }

    fn set_active(&self, active: bool) {
        if self.active.swap(active, Ordering::Relaxed) != active {
            if active {
                tracing::info!(
                    "reports: this process schedules the reports (it holds the history's lease)"
                );
            } else {
                tracing::info!("reports: another process holds the history's lease; standing by");
            }
        }
    }

    fn count(&self, report: &str, outcome: &str) {
        self.service
            .metrics()
            .reports
            .with_label_values(&[report, outcome])
            .inc();
    }
}

/// Lists the reports of the file at `path`: name, schedule, format, next run.
pub fn list(path: &Path) -> Result<String, String> {
    let config = config::load(path, &|k| std::env::var(k).ok())?;
    let now = Utc::now();
    let mut out = format!(
        "{:<24} {:<10} {:<40} NEXT RUN\n",
        "NAME", "FORMAT", "SCHEDULE"
    );
    for r in &config.reports {
        out.push_str(&format!(
            "{:<24} {:<10} {:<40} {}\n",
            r.name,
            r.format.label(),
            r.schedule.describe(),
            r.schedule
                .next_after(now)
                .map(|t| t.with_timezone(&r.timezone).to_rfc3339())
                .unwrap_or_else(|| "never".into())
        ));
    }
    Ok(out)
}

fn at(unix: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix, 0).map(|t| t.to_rfc3339())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
