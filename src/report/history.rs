//! Run history for scheduled e-mail reports, kept in an embedded SQLite file.
//!
//! Why it exists: reports must never be lost or sent twice, across restarts
//! and across replicas sharing one database file. The guarantees come from
//! the database, not from process memory:
//!
//! * `UNIQUE(report, due)` + [`History::claim`]: a given due time of a report
//!   is claimed at most once, ever, by any process.
//! * A single-row lease ([`History::acquire_lease`]) elects one scheduler per
//!   database file.
//! * Every state change is committed before/after the side effect, so a crash
//!   mid-run leaves a `pending`/`sending` row that [`History::due_retries`]
//!   hands to the next scheduler instead of forgetting it.
//!
//! All calls are synchronous (wrap them in `tokio::task::spawn_blocking`).
//! Times are unix seconds supplied by the caller, which keeps tests
//! deterministic and avoids a clock dependency here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

/// How long a call waits for another process's write lock before failing;
/// long enough to ride out a peer's short transaction, short enough that a
/// wedged peer surfaces as an error instead of a hang.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest failure reason stored, in characters, so a huge SMTP/HTTP error
/// body cannot bloat the database or the status page.
const MAX_REASON_CHARS: usize = 500;

/// Schema migrations; entry `i` upgrades `user_version` `i` to `i + 1`.
/// Only ever append: released steps must never change.
const MIGRATIONS: &[&str] = &[
    // v1: runs + lease.
    "CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        report      TEXT    NOT NULL,
        due         INTEGER NOT NULL,
        state       TEXT    NOT NULL
                    CHECK (state IN ('pending','sending','retrying','sent','failed')),
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT,
        retry_at    INTEGER,
        owner       TEXT,
        started_at  INTEGER,
        sent_at     INTEGER,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        UNIQUE (report, due)
    );
    CREATE INDEX runs_by_state ON runs (state, retry_at);
    CREATE TABLE lease (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        holder  TEXT,
        expires INTEGER NOT NULL
    );
    INSERT INTO lease (id, holder, expires) VALUES (1, NULL, 0);
    CREATE TABLE reports (
        name        TEXT    PRIMARY KEY,
        first_seen  INTEGER NOT NULL
    );",
];

/// Columns read into a [`Run`], in the order [`row_to_run`] expects.
const RUN_COLUMNS: &str =
    "id, report, due, state, attempts, last_error, retry_at, sent_at, updated_at";

/// Errors from the run history. Each message names the database file and
/// says what the operator can do, because these end up in service logs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryError {
    /// The parent directory is missing; we deliberately do not create it so
    /// a typo in the config does not silently start an empty history.
    #[error(
        "report history {}: directory {} does not exist: create it or point reports.history at a writable location",
        path.display(),
        dir.display()
    )]
    MissingDirectory { path: PathBuf, dir: PathBuf },

    /// SQLite could not open or create the file.
    #[error(
        "report history {}: cannot open ({cause}): check the directory exists and is writable (reports.history)",
        path.display()
    )]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },

    /// The file exists but is not SQLite; refusing it protects whatever it is.
    #[error(
        "report history {}: file exists but is not an SQLite database: move it aside or set reports.history to another file",
        path.display()
    )]
    NotADatabase { path: PathBuf },

    /// The schema was written by a newer build; running on it could corrupt it.
    #[error(
        "report history {}: schema version {found} is newer than this build supports ({supported}): upgrade grender or use another file (reports.history)",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: usize,
    },

    /// A schema upgrade step failed; the transaction was rolled back.
    #[error(
        "report history {}: schema upgrade to version {version} failed ({cause}): restore a backup or move the file aside",
        path.display()
    )]
    Migrate {
        path: PathBuf,
        version: usize,
        cause: rusqlite::Error,
    },

    /// Another process held the write lock past the busy timeout.
    #[error(
        "report history {}: database stayed locked for over {}s during {op}: another process is holding a long write lock; check for stray processes or a network filesystem",
        path.display(),
        BUSY_TIMEOUT.as_secs()
    )]
    Busy { path: PathBuf, op: &'static str },

    /// Any other SQLite failure (disk full, I/O error, corruption, ...).
    #[error(
        "report history {}: {op} failed ({cause}): check disk space and file permissions",
        path.display()
    )]
    Query {
        path: PathBuf,
        op: &'static str,
        cause: rusqlite::Error,
    },

    /// The run id is unknown (pruned, or a caller bug).
    #[error("report history {}: run {run_id} does not exist", path.display())]
    RunNotFound { path: PathBuf, run_id: i64 },

    /// The run is in a state that does not allow `action`; refusing it is
    /// what stops a sent report from being sent again.
    #[error(
        "report history {}: run {run_id} is {state}, cannot {action}",
        path.display()
    )]
    InvalidTransition {
        path: PathBuf,
        run_id: i64,
        state: RunState,
        action: &'static str,
    },

    /// A caller passed a value that would break the guarantees (empty
    /// holder, non-positive lease TTL).
    #[error("report history {}: invalid argument: {what}", path.display())]
    InvalidArgument { path: PathBuf, what: &'static str },
}

/// State of one run, stored as TEXT; also what a JSON status page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Claimed, no attempt started yet.
    Pending,
    /// An attempt is in progress (or its process died mid-attempt).
    Sending,
    /// The last attempt failed; another is scheduled at `retry_at`.
    Retrying,
    /// Delivered; final.
    Sent,
    /// Gave up; final.
    Failed,
}

impl RunState {
    /// Stable lowercase name used in the database and in status JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Sending => "sending",
            RunState::Retrying => "retrying",
            RunState::Sent => "sent",
            RunState::Failed => "failed",
        }
    }

    /// Whether the run is finished, so the scheduler must not touch it again.
    pub(crate) fn is_final(self) -> bool {
        matches!(self, RunState::Sent | RunState::Failed)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`RunState`]'s; means a corrupt or
/// foreign row, so it is reported rather than guessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run state {0:?}")]
pub(crate) struct UnknownRunState(pub(crate) String);

impl FromStr for RunState {
    type Err = UnknownRunState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(RunState::Pending),
            "sending" => Ok(RunState::Sending),
            "retrying" => Ok(RunState::Retrying),
            "sent" => Ok(RunState::Sent),
            "failed" => Ok(RunState::Failed),
            other => Err(UnknownRunState(other.to_owned())),
        }
    }
}

/// Outcome of [`History::claim`]: tells the scheduler whether it owns this
/// (report, due) run or someone already handled/is handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// First claim ever; the caller owns the run with this id.
    New(i64),
    /// Already claimed earlier (by us or anyone); do not send from here.
    Exists { state: RunState, attempts: u32 },
}

/// One row of history, for retries and the status page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    /// Row id, passed back to `begin_attempt`/`mark_*`.
    pub(crate) id: i64,
    /// Report name from the config.
    pub(crate) report: String,
    /// Scheduled time (unix seconds) this run is for.
    pub(crate) due: i64,
    /// Current state.
    pub(crate) state: RunState,
    /// Attempts started so far.
    pub(crate) attempts: u32,
    /// Reason of the last failed attempt, if any (kept after a later success).
    pub(crate) last_error: Option<String>,
    /// When the next attempt is due, for `retrying` runs.
    pub(crate) retry_at: Option<i64>,
    /// When it was delivered.
    pub(crate) sent_at: Option<i64>,
    /// Last state change (unix seconds).
    pub(crate) updated_at: i64,
}

/// Exponential retry delay: `base_secs * 2^(attempt-1)`, capped at
/// `max_secs`; saturates instead of overflowing for any `attempt`.
/// Attempt 0 is treated like 1; negative inputs are treated as 0.
pub(crate) fn backoff(attempt: u32, base_secs: i64, max_secs: i64) -> i64 {
    let base = base_secs.max(0);
    let max = max_secs.max(0);
    let exp = attempt.saturating_sub(1);
    let delay = match 1i64.checked_shl(exp) {
        // checked_shl only rejects exp >= 64; 2^63 wraps to i64::MIN, so
        // also require a positive factor.
        Some(factor) if factor > 0 => base.saturating_mul(factor),
        _ if base == 0 => 0,
        _ => i64::MAX,
    };
    delay.min(max)
}

/// Handle on the history database. `Send + Sync`; one per process is enough
/// (calls are serialised on the inner connection, which is fine for the
/// handful of writes per report run).
pub(crate) struct History {
    conn: Mutex<Connection>,
    holder: String,
    path: PathBuf,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl History {
    /// Opens or creates the database at `path` (the parent directory must
    /// exist), enables WAL and a busy timeout, and upgrades the schema.
    /// `holder` identifies this process for the lease and for stale-run
    /// detection, so it must be unique per process (e.g. "host:pid:random").
    pub(crate) fn open(path: &Path, holder: &str) -> Result<History, HistoryError> {
        let path_buf = path.to_path_buf();
        if holder.is_empty() {
            return Err(HistoryError::InvalidArgument {
                path: path_buf,
                what: "lease holder id must not be empty",
            });
        }
        // (No let-chain here so the module also builds on edition 2021.)
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
        {
            return Err(HistoryError::MissingDirectory {
                path: path_buf,
                dir: dir.to_path_buf(),
            });
        }

        // No SQLITE_OPEN_URI: a configured path is a path, never a URI.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|cause| HistoryError::Open {
                path: path_buf.clone(),
                cause,
            })?;

        let setup = |op: &'static str| {
            let p = path_buf.clone();
            move |e: rusqlite::Error| map_err(&p, op, e)
        };
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(setup("set busy timeout"))?;
        // First real read of the file: a non-SQLite file fails here.
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(setup("read journal mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // WAL lets status-page reads proceed during a write. If the
            // filesystem cannot do WAL, SQLite keeps the old mode; that is
            // slower but still correct, so it is not an error.
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
                .map_err(setup("enable WAL"))?;
        }
        // FULL: a commit survives power loss, so a recorded "sent" is never
        // rolled back into a resend.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(setup("set synchronous"))?;

        migrate(&mut conn, &path_buf)?;

        Ok(History {
            conn: Mutex::new(conn),
            holder: holder.to_owned(),
            path: path_buf,
        })
    }

    /// The path this history was opened with, for status messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// One scheduler per database: takes or renews the lease if it is free,
    /// expired (`now >= expires`) or already ours. Returns whether we now
    /// hold it until `now + ttl_secs`. A single conditional UPDATE, so two
    /// processes on one file can never both get `true` for the same window
    /// (assuming their clocks roughly agree).
    pub(crate) fn acquire_lease(&self, now: i64, ttl_secs: i64) -> Result<bool, HistoryError> {
        if ttl_secs <= 0 {
            return Err(HistoryError::InvalidArgument {
                path: self.path.clone(),
                what: "lease ttl must be positive",
            });
        }
        let conn = self.lock();
        let changed = conn
            .execute(
                "UPDATE lease SET holder = ?1, expires = ?2
                 WHERE id = 1 AND (holder IS NULL OR holder = ?1 OR expires <= ?3)",
                params![self.holder, now.saturating_add(ttl_secs), now],
            )
            .map_err(|e| self.err("acquire lease", e))?;
        Ok(changed == 1)
    }

    /// Gives the lease up (on shutdown) so another replica can take over
    /// without waiting for expiry. A no-op if we do not hold it.
    pub(crate) fn release_lease(&self) -> Result<(), HistoryError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE lease SET holder = NULL, expires = 0 WHERE id = 1 AND holder = ?1",
            params![self.holder],
        )
        .map_err(|e| self.err("release lease", e))?;
        Ok(())
    }

    /// Records that run (report, due) is starting. Exactly once per
    /// (report, due) ever: `Claim::New(run_id)` the first time, then
    /// `Claim::Exists` with the current state — this is the no-double-send
    /// guarantee for scheduled and catch-up runs.
    pub(crate) fn claim(&self, report: &str, due: i64, now: i64) -> Result<Claim, HistoryError> {
        let mut conn = self.lock();
        let op = "claim run";
        // IMMEDIATE: take the write lock up front so the insert-or-read is one
        // consistent step and the busy timeout applies (a deferred read->write
        // upgrade in WAL mode fails at once with SQLITE_BUSY instead).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(op, e))?;
        let inserted: Option<i64> = tx
            .query_row(
                "INSERT INTO runs (report, due, state, attempts, owner, created_at, updated_at)
                 VALUES (?1, ?2, 'pending', 0, ?3, ?4, ?4)
                 ON CONFLICT (report, due) DO NOTHING
                 RETURNING id",
                params![report, due, self.holder, now],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(op, e))?;
        let claim = match inserted {
            Some(id) => Claim::New(id),
            None => {
                let (state, attempts) = tx
                    .query_row(
                        "SELECT state, attempts FROM runs WHERE report = ?1 AND due = ?2",
                        params![report, due],
                        |r| Ok((parse_state(r, 0)?, r.get::<_, u32>(1)?)),
                    )
                    .map_err(|e| self.err(op, e))?;
                Claim::Exists { state, attempts }
            }
        };
        tx.commit().map_err(|e| self.err(op, e))?;
        Ok(claim)
    }

    /// Marks an attempt as starting (attempts += 1, state `sending`, owner =
    /// this process) before the side effect, so a crash during the send is
    /// visible afterwards. Returns the attempt number (1-based). Refuses
    /// finished runs, so a sent report cannot be re-sent by mistake.
    pub(crate) fn begin_attempt(&self, run_id: i64, now: i64) -> Result<u32, HistoryError> {
        let conn = self.lock();
        let op = "begin attempt";
        let attempt: Option<u32> = conn
            .query_row(
                "UPDATE runs
                 SET attempts = attempts + 1, state = 'sending', owner = ?2,
                     started_at = ?3, retry_at = NULL, updated_at = ?3
                 WHERE id = ?1 AND state IN ('pending', 'sending', 'retrying')
                 RETURNING attempts",
                params![run_id, self.holder, now],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(op, e))?;
        match attempt {
            Some(n) => Ok(n),
            None => Err(self.explain_unchanged(&conn, run_id, "start another attempt")),
        }
    }

    /// Records delivery. Idempotent (a second call keeps the first
    /// `sent_at`) and accepted from any state, because the mail is already
    /// out: failing to record it would cause a resend.
    pub(crate) fn mark_sent(&self, run_id: i64, now: i64) -> Result<(), HistoryError> {
        let conn = self.lock();
        let changed = conn
            .execute(
                "UPDATE runs SET state = 'sent', sent_at = ?2, retry_at = NULL, updated_at = ?2
                 WHERE id = ?1 AND state <> 'sent'",
                params![run_id, now],
            )
            .map_err(|e| self.err("mark sent", e))?;
        if changed == 1 {
            return Ok(());
        }
        match self.state_of(&conn, run_id)? {
            Some(_) => Ok(()), // already sent
            None => Err(HistoryError::RunNotFound {
                path: self.path.clone(),
                run_id,
            }),
        }
    }

    /// Failure of the current attempt. `retry_at: Some(t)` → state
    /// `retrying` (returned by [`History::due_retries`] from `t`); `None` →
    /// `failed`, final. The reason is stored (truncated to 500 characters)
    /// for the log and status page. Never demotes a sent run.
    pub(crate) fn mark_failed(
        &self,
        run_id: i64,
        reason: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<(), HistoryError> {
        let state = if retry_at.is_some() {
            RunState::Retrying
        } else {
            RunState::Failed
        };
        let reason = truncate_chars(reason, MAX_REASON_CHARS);
        let conn = self.lock();
        let changed = conn
            .execute(
                "UPDATE runs SET state = ?2, last_error = ?3, retry_at = ?4, updated_at = ?5
                 WHERE id = ?1 AND state <> 'sent'",
                params![run_id, state.as_str(), reason, retry_at, now],
            )
            .map_err(|e| self.err("mark failed", e))?;
        if changed == 1 {
            Ok(())
        } else {
            Err(self.explain_unchanged(&conn, run_id, "mark it failed"))
        }
    }

    /// Runs needing an attempt now: `retrying` runs whose `retry_at <= now`,
    /// plus `pending`/`sending` runs abandoned by another process (owner is
    /// not this process and no change for at least `stale_after` seconds) —
    /// so a crash mid-run is resumed, not lost. This process's own in-flight
    /// runs are never returned, so a slow send is not started twice; choose
    /// `stale_after` longer than the slowest render+send of another replica.
    /// Ordered by due time.
    pub(crate) fn due_retries(&self, now: i64, stale_after: i64) -> Result<Vec<Run>, HistoryError> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE (state = 'retrying' AND retry_at <= ?1)
                OR (state IN ('pending', 'sending')
                    AND updated_at <= ?2
                    AND (owner IS NULL OR owner <> ?3))
             ORDER BY due, id"
        );
        self.query_runs(
            &conn,
            "list due retries",
            &sql,
            params![now, now.saturating_sub(stale_after.max(0)), self.holder],
        )
    }

    /// When the scheduler first saw `report` in the reports file (recorded now if never):
    /// a due time before it is never caught up, so adding a report does not send it at once.
    pub(crate) fn first_seen(&self, report: &str, now: i64) -> Result<i64, HistoryError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO reports (name, first_seen) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![report, now],
        )
        .map_err(|e| self.err("record a new report", e))?;
        conn.query_row(
            "SELECT first_seen FROM reports WHERE name = ?1",
            params![report],
            |r| r.get(0),
        )
        .map_err(|e| self.err("read when a report was first seen", e))
    }

    /// Latest due time recorded for a report, in any state. The scheduler's
    /// catch-up compares it with the latest due time before now to decide
    /// whether a run missed while down still has to be sent.
    #[cfg(test)]
    pub(crate) fn last_due(&self, report: &str) -> Result<Option<i64>, HistoryError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT MAX(due) FROM runs WHERE report = ?1",
            params![report],
            |r| r.get(0),
        )
        .map_err(|e| self.err("read last due time", e))
    }

    /// For status pages: the latest run (highest due) of each report,
    /// ordered by report name.
    pub(crate) fn latest_runs(&self) -> Result<Vec<Run>, HistoryError> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs AS r
             WHERE r.due = (SELECT MAX(due) FROM runs WHERE report = r.report)
             ORDER BY r.report"
        );
        self.query_runs(&conn, "list latest runs", &sql, [])
    }

    /// Deletes finished (`sent`/`failed`) runs last updated before
    /// `keep_before`, keeping history bounded. Always keeps each report's
    /// latest run (catch-up relies on [`History::last_due`]) and every
    /// unfinished run (it still has work). Keep retention longer than the
    /// catch-up window. Returns the number of rows deleted.
    pub(crate) fn prune(&self, keep_before: i64) -> Result<usize, HistoryError> {
        let conn = self.lock();
        conn.execute(
            "DELETE FROM runs
             WHERE state IN ('sent', 'failed')
               AND updated_at < ?1
               AND due < (SELECT MAX(due) FROM runs AS l WHERE l.report = runs.report)",
            params![keep_before],
        )
        .map_err(|e| self.err("prune history", e))
    }

    /// Locks the connection. A panic in another caller cannot leave SQLite
    /// state half-written (an open transaction is rolled back on drop), so a
    /// poisoned lock is safe to reuse rather than failing forever.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self, op: &'static str, e: rusqlite::Error) -> HistoryError {
        map_err(&self.path, op, e)
    }

    fn state_of(&self, conn: &Connection, run_id: i64) -> Result<Option<RunState>, HistoryError> {
        conn.query_row(
            "SELECT state FROM runs WHERE id = ?1",
            params![run_id],
            |r| parse_state(r, 0),
        )
        .optional()
        .map_err(|e| self.err("read run state", e))
    }

    /// Why a guarded UPDATE changed nothing: unknown id or a refused state.
    fn explain_unchanged(
        &self,
        conn: &Connection,
        run_id: i64,
        action: &'static str,
    ) -> HistoryError {
        match self.state_of(conn, run_id) {
            Ok(Some(state)) => HistoryError::InvalidTransition {
                path: self.path.clone(),
                run_id,
                state,
                action,
            },
            Ok(None) => HistoryError::RunNotFound {
                path: self.path.clone(),
                run_id,
            },
            Err(e) => e,
        }
    }

    fn query_runs(
        &self,
        conn: &Connection,
        op: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Run>, HistoryError> {
        let mut stmt = conn.prepare(sql).map_err(|e| self.err(op, e))?;
        let rows = stmt
            .query_map(params, row_to_run)
            .map_err(|e| self.err(op, e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(op, e))
    }
}

/// Brings the schema to the latest version inside one IMMEDIATE transaction,
/// so two processes starting together cannot both apply a step.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let op = "upgrade schema";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map_err(path, op, e))?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| map_err(path, op, e))?;
    let current = usize::try_from(found)
        .ok()
        .filter(|v| *v <= MIGRATIONS.len())
        .ok_or_else(|| HistoryError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: MIGRATIONS.len(),
        })?;
    for (index, step) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        let migrate_err = |cause| HistoryError::Migrate {
            path: path.to_path_buf(),
            version,
            cause,
        };
        tx.execute_batch(step).map_err(migrate_err)?;
        // user_version lives in the header page, so it commits atomically
        // with the step.
        let as_i64 = i64::try_from(version).unwrap_or(i64::MAX);
        tx.pragma_update(None, "user_version", as_i64)
            .map_err(migrate_err)?;
    }
    tx.commit().map_err(|e| map_err(path, op, e))
}

/// Classifies a SQLite error into the variant whose message gives the right
/// advice.
fn map_err(path: &Path, op: &'static str, e: rusqlite::Error) -> HistoryError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => HistoryError::NotADatabase {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => HistoryError::Busy {
            path: path.to_path_buf(),
            op,
        },
        _ => HistoryError::Query {
            path: path.to_path_buf(),
            op,
            cause: e,
        },
    }
}

fn parse_state(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<RunState> {
    let text: String = row.get(idx)?;
    text.parse().map_err(|e: UnknownRunState| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn row_to_run(row: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: row.get(0)?,
        report: row.get(1)?,
        due: row.get(2)?,
        state: parse_state(row, 3)?,
        attempts: row.get(4)?,
        last_error: row.get(5)?,
        retry_at: row.get(6)?,
        sent_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

/// Truncates on a char boundary (never panics on multi-byte text).
fn truncate_chars(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((byte_idx, _)) => &s[..byte_idx],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use tempfile::TempDir;

    fn db() -> (TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        (dir, path)
    }

    fn open(path: &Path, holder: &str) -> History {
        History::open(path, holder).unwrap()
    }

    fn new_id(c: Claim) -> i64 {
        match c {
            Claim::New(id) => id,
            other => panic!("expected Claim::New, got {other:?}"),
        }
    }

    #[test]
    fn history_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<History>();
    }

    #[test]
    fn open_creates_file_and_schema_survives_reopen() {
        let (_dir, path) = db();
        assert!(!path.exists());
        let h = open(&path, "a");
        assert!(path.exists(), "file created on first open");
        let id = new_id(h.claim("daily", 100, 100).unwrap());
        assert_eq!(h.begin_attempt(id, 101).unwrap(), 1);
        drop(h);

        let h = open(&path, "b");
        assert_eq!(
            h.claim("daily", 100, 200).unwrap(),
            Claim::Exists {
                state: RunState::Sending,
                attempts: 1
            }
        );
        let conn = h.lock();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn claim_twice_new_then_exists() {
        let (_dir, path) = db();
        let h = open(&path, "a");
        let id = new_id(h.claim("daily", 100, 100).unwrap());
        assert_eq!(
            h.claim("daily", 100, 101).unwrap(),
            Claim::Exists {
                state: RunState::Pending,
                attempts: 0
            }
        );
        // Other due time and other report are independent runs.
        let id2 = new_id(h.claim("daily", 200, 200).unwrap());
        let id3 = new_id(h.claim("weekly", 100, 200).unwrap());
        assert!(id != id2 && id2 != id3 && id != id3);

        h.begin_attempt(id, 102).unwrap();
        h.mark_sent(id, 103).unwrap();
        assert_eq!(
            h.claim("daily", 100, 104).unwrap(),
            Claim::Exists {
                state: RunState::Sent,
                attempts: 1
            }
        );
    }

    #[test]
    fn lease_is_exclusive_renewable_and_expires() {
        let (_dir, path) = db();
        let a = open(&path, "host-a:1:x");
        let b = open(&path, "host-b:2:y");

        assert!(a.acquire_lease(1000, 30).unwrap());
        assert!(!b.acquire_lease(1000, 30).unwrap());
        assert!(!b.acquire_lease(1029, 30).unwrap(), "not expired yet");

        // Renewal by the holder extends it.
        assert!(a.acquire_lease(1020, 30).unwrap());
        assert!(!b.acquire_lease(1030, 30).unwrap(), "renewed until 1050");
        assert!(!b.acquire_lease(1049, 30).unwrap());

        // Expired (now >= expires): b takes over, a cannot renew.
        assert!(b.acquire_lease(1050, 30).unwrap());
        assert!(!a.acquire_lease(1051, 30).unwrap());

        // a releasing a lease it does not hold changes nothing.
        a.release_lease().unwrap();
        assert!(!a.acquire_lease(1052, 30).unwrap());

        // b releases: a gets in immediately, well before expiry.
        b.release_lease().unwrap();
        assert!(a.acquire_lease(1053, 30).unwrap());
        assert!(!b.acquire_lease(1054, 30).unwrap());

        assert!(matches!(
            a.acquire_lease(1055, 0),
            Err(HistoryError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn lease_race_has_one_winner() {
        let (_dir, path) = db();
        let handles: Vec<History> = (0..4).map(|i| open(&path, &format!("h{i}"))).collect();
        for round in 0..20i64 {
            let now = 10_000 + round * 100; // each round starts after expiry
            let barrier = Barrier::new(handles.len());
            let wins: usize = std::thread::scope(|s| {
                let joins: Vec<_> = handles
                    .iter()
                    .map(|h| {
                        let barrier = &barrier;
                        s.spawn(move || {
                            barrier.wait();
                            h.acquire_lease(now, 50).unwrap()
                        })
                    })
                    .collect();
                joins
                    .into_iter()
                    .map(|j| usize::from(j.join().unwrap()))
                    .sum()
            });
            assert_eq!(wins, 1, "round {round}");
        }
    }

    #[test]
    fn concurrent_claims_from_two_handles_yield_one_new() {
        let (_dir, path) = db();
        let a = open(&path, "a");
        let b = open(&path, "b");
        for due in 0..50i64 {
            let barrier = Barrier::new(2);
            let (ra, rb) = std::thread::scope(|s| {
                let ja = s.spawn(|| {
                    barrier.wait();
                    a.claim("daily", due, due).unwrap()
                });
                let jb = s.spawn(|| {
                    barrier.wait();
                    b.claim("daily", due, due).unwrap()
                });
                (ja.join().unwrap(), jb.join().unwrap())
            });
            let news = [ra, rb]
                .iter()
                .filter(|c| matches!(c, Claim::New(_)))
                .count();
            assert_eq!(news, 1, "due {due}: {ra:?} {rb:?}");
            let exists = [ra, rb]
                .iter()
                .filter(|c| {
                    **c == Claim::Exists {
                        state: RunState::Pending,
                        attempts: 0,
                    }
                })
                .count();
            assert_eq!(exists, 1, "due {due}: {ra:?} {rb:?}");
        }
    }

    #[test]
    fn retry_flow() {
        let (_dir, path) = db();
        let h = open(&path, "a");
        let id = new_id(h.claim("daily", 100, 100).unwrap());
        assert_eq!(h.begin_attempt(id, 100).unwrap(), 1);
        h.mark_failed(id, "smtp: connection refused", Some(160), 101)
            .unwrap();

        assert!(h.due_retries(159, 600).unwrap().is_empty());
        let due = h.due_retries(160, 600).unwrap();
        assert_eq!(due.len(), 1);
        let run = &due[0];
        assert_eq!(run.id, id);
        assert_eq!(run.report, "daily");
        assert_eq!(run.due, 100);
        assert_eq!(run.state, RunState::Retrying);
        assert_eq!(run.attempts, 1);
        assert_eq!(run.retry_at, Some(160));
        assert_eq!(run.last_error.as_deref(), Some("smtp: connection refused"));
        assert_eq!(run.updated_at, 101);

        // Second attempt in flight: not returned (ours, and not retrying).
        assert_eq!(h.begin_attempt(id, 160).unwrap(), 2);
        assert!(h.due_retries(10_000, 600).unwrap().is_empty());

        // Final failure: never returned again.
        h.mark_failed(id, "smtp: 550 mailbox unavailable", None, 170)
            .unwrap();
        assert!(h.due_retries(100_000, 0).unwrap().is_empty());
        let latest = h.latest_runs().unwrap();
        assert_eq!(latest[0].state, RunState::Failed);
        assert_eq!(latest[0].attempts, 2);
        assert_eq!(latest[0].retry_at, None);
        assert!(matches!(
            h.begin_attempt(id, 171),
            Err(HistoryError::InvalidTransition {
                state: RunState::Failed,
                ..
            })
        ));

        // Sent run: not returned, cannot be restarted or demoted.
        let id2 = new_id(h.claim("daily", 200, 200).unwrap());
        h.begin_attempt(id2, 200).unwrap();
        h.mark_failed(id2, "timeout", Some(210), 201).unwrap();
        h.begin_attempt(id2, 210).unwrap();
        h.mark_sent(id2, 211).unwrap();
        assert!(h.due_retries(100_000, 0).unwrap().is_empty());
        let err = h.begin_attempt(id2, 212).unwrap_err();
        assert!(err.to_string().contains("is sent"), "{err}");
        assert!(matches!(
            h.mark_failed(id2, "late", None, 213),
            Err(HistoryError::InvalidTransition { .. })
        ));
        // mark_sent is idempotent and keeps the first sent_at.
        h.mark_sent(id2, 999).unwrap();
        let run = h
            .latest_runs()
            .unwrap()
            .into_iter()
            .find(|r| r.id == id2)
            .unwrap();
        assert_eq!(run.sent_at, Some(211));
        assert_eq!(run.state, RunState::Sent);
        assert_eq!(run.last_error.as_deref(), Some("timeout"));
        assert_eq!(run.retry_at, None);
    }

    #[test]
    fn unknown_run_ids_are_errors() {
        let (_dir, path) = db();
        let h = open(&path, "a");
        assert!(matches!(
            h.begin_attempt(42, 0),
            Err(HistoryError::RunNotFound { run_id: 42, .. })
        ));
        assert!(matches!(
            h.mark_sent(42, 0),
            Err(HistoryError::RunNotFound { run_id: 42, .. })
        ));
        assert!(matches!(
            h.mark_failed(42, "x", None, 0),
            Err(HistoryError::RunNotFound { run_id: 42, .. })
        ));
    }

    #[test]
    fn stale_runs_of_dead_process_are_resumed() {
        let (_dir, path) = db();
        let dead = open(&path, "old-process");
        let sending = new_id(dead.claim("daily", 100, 100).unwrap());
        dead.begin_attempt(sending, 100).unwrap();
        let pending = new_id(dead.claim("weekly", 50, 105).unwrap());
        drop(dead); // crash: both rows left unfinished

        let h = open(&path, "new-process");
        assert!(
            h.due_retries(100 + 299, 300).unwrap().is_empty(),
            "not stale yet"
        );
        let ids: Vec<i64> = h
            .due_retries(100 + 300, 300)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![sending], "pending one is 5 s younger");
        let runs = h.due_retries(105 + 300, 300).unwrap();
        // Ordered by due: weekly@50 before daily@100.
        assert_eq!(
            runs.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![pending, sending]
        );
        assert_eq!(runs[1].state, RunState::Sending);
        assert_eq!(runs[1].attempts, 1);

        // Taking it over makes it ours: no longer offered to us.
        assert_eq!(h.begin_attempt(sending, 500).unwrap(), 2);
        let ids: Vec<i64> = h
            .due_retries(10_000, 300)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![pending]);

        // ...but a third process would see it once it is stale again.
        let other = open(&path, "third");
        assert!(
            other
                .due_retries(10_000, 300)
                .unwrap()
                .iter()
                .any(|r| r.id == sending)
        );
    }

    #[test]
    fn last_due_per_report() {
        let (_dir, path) = db();
        let h = open(&path, "a");
        assert_eq!(h.last_due("daily").unwrap(), None);
        h.claim("daily", 300, 300).unwrap();
        h.claim("daily", 100, 301).unwrap(); // claimed later, earlier due
        h.claim("weekly", 900, 900).unwrap();
        assert_eq!(h.last_due("daily").unwrap(), Some(300));
        assert_eq!(h.last_due("weekly").unwrap(), Some(900));
        assert_eq!(h.last_due("monthly").unwrap(), None);
    }

    #[test]
    fn latest_runs_picks_highest_due_per_report() {
        let (_dir, path) = db();
        let h = open(&path, "a");
        assert!(h.latest_runs().unwrap().is_empty());
        let d1 = new_id(h.claim("daily", 100, 100).unwrap());
        h.begin_attempt(d1, 100).unwrap();
        h.mark_sent(d1, 101).unwrap();
        let d2 = new_id(h.claim("daily", 200, 200).unwrap());
        let w1 = new_id(h.claim("weekly", 150, 150).unwrap());
        h.claim("daily", 50, 300).unwrap(); // older due, newer row

        let latest = h.latest_runs().unwrap();
        assert_eq!(
            latest
                .iter()
                .map(|r| (r.report.as_str(), r.id, r.due, r.state))
                .collect::<Vec<_>>(),
            vec![
                ("daily", d2, 200, RunState::Pending),
                ("weekly", w1, 150, RunState::Pending)
            ]
        );
    }

    #[test]
    fn prune_keeps_latest_and_unfinished() {
        let (_dir, path) = db();
        let h = open(&path, "a");
        let finish = |report: &str, due: i64, sent: bool| {
            let id = new_id(h.claim(report, due, due).unwrap());
            h.begin_attempt(id, due).unwrap();
            if sent {
                h.mark_sent(id, due).unwrap();
            } else {
                h.mark_failed(id, "boom", None, due).unwrap();
            }
            id
        };
        let old_sent = finish("daily", 100, true);
        let old_failed = finish("daily", 200, false);
        let daily_latest = finish("daily", 300, true);
        let weekly_only = finish("weekly", 100, true); // old but latest of its report
        let retrying = new_id(h.claim("daily", 150, 150).unwrap());
        h.begin_attempt(retrying, 150).unwrap();
        h.mark_failed(retrying, "x", Some(10_000), 150).unwrap();
        let recent = finish("daily", 250, true); // updated at 250 >= keep_before

        assert_eq!(h.prune(250).unwrap(), 2);
        let conn = h.lock();
        let mut stmt = conn.prepare("SELECT id FROM runs ORDER BY id").unwrap();
        let left: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        drop(stmt);
        drop(conn);
        let mut want = vec![daily_latest, weekly_only, retrying, recent];
        want.sort();
        assert_eq!(left, want);
        assert!(!left.contains(&old_sent) && !left.contains(&old_failed));

        // Even a cutoff in the far future keeps each report's latest.
        h.prune(i64::MAX).unwrap();
        assert_eq!(h.last_due("daily").unwrap(), Some(300));
        assert_eq!(h.last_due("weekly").unwrap(), Some(100));
        assert_eq!(h.latest_runs().unwrap().len(), 2);
        // And the retrying run is still due.
        assert_eq!(h.due_retries(10_000, 600).unwrap()[0].id, retrying);
    }

    #[test]
    fn backoff_doubles_caps_and_never_overflows() {
        assert_eq!(backoff(1, 30, 3600), 30);
        assert_eq!(backoff(2, 30, 3600), 60);
        assert_eq!(backoff(3, 30, 3600), 120);
        assert_eq!(backoff(7, 30, 3600), 1920);
        assert_eq!(backoff(8, 30, 3600), 3600); // 3840 capped
        assert_eq!(backoff(0, 30, 3600), 30);
        for attempt in [62, 63, 64, 65, 100, u32::MAX] {
            assert_eq!(backoff(attempt, 30, 3600), 3600, "attempt {attempt}");
            assert_eq!(
                backoff(attempt, i64::MAX, i64::MAX),
                i64::MAX,
                "attempt {attempt}"
            );
        }
        assert_eq!(backoff(100, 0, 3600), 0);
        assert_eq!(backoff(3, -5, 3600), 0);
        assert_eq!(backoff(3, 30, -1), 0);
    }

    #[test]
    fn missing_directory_error_names_path() {
        let (dir, _) = db();
        let path = dir.path().join("no-such-dir").join("history.db");
        let err = History::open(&path, "a").unwrap_err();
        assert!(
            matches!(err, HistoryError::MissingDirectory { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
        assert!(!path.parent().unwrap().exists(), "must not create the dir");
    }

    #[test]
    fn path_is_a_directory_gives_open_error() {
        let (dir, _) = db();
        let err = History::open(dir.path(), "a").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("reports.history"), "{msg}");
    }

    #[test]
    fn non_sqlite_file_is_rejected_clearly() {
        let (_dir, path) = db();
        std::fs::write(&path, "this is a config file, not a database\n".repeat(200)).unwrap();
        let err = History::open(&path, "a").unwrap_err();
        assert!(matches!(err, HistoryError::NotADatabase { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("not an SQLite database"), "{msg}");
        // The file is left untouched.
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("this is a config file")
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let (_dir, path) = db();
        drop(open(&path, "a"));
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = History::open(&path, "a").unwrap_err();
        assert!(
            matches!(err, HistoryError::SchemaTooNew { found: 99, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("upgrade grender"));
    }

    #[test]
    fn empty_holder_is_refused() {
        let (_dir, path) = db();
        assert!(matches!(
            History::open(&path, ""),
            Err(HistoryError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn long_reason_is_truncated_on_char_boundary() {
        let (_dir, path) = db();
        let h = open(&path, "a");
        let id = new_id(h.claim("daily", 1, 1).unwrap());
        h.begin_attempt(id, 1).unwrap();
        let reason = "é".repeat(2000);
        h.mark_failed(id, &reason, None, 2).unwrap();
        let stored = h.latest_runs().unwrap()[0].last_error.clone().unwrap();
        assert_eq!(stored.chars().count(), MAX_REASON_CHARS);
        assert!(stored.chars().all(|c| c == 'é'));
        assert_eq!(truncate_chars("abc", 5), "abc");
        assert_eq!(truncate_chars("abc", 2), "ab");
    }

    #[test]
    fn run_state_round_trips() {
        for s in [
            RunState::Pending,
            RunState::Sending,
            RunState::Retrying,
            RunState::Sent,
            RunState::Failed,
        ] {
            assert_eq!(s.as_str().parse::<RunState>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
        assert!(RunState::Sent.is_final() && RunState::Failed.is_final());
        assert!(!RunState::Retrying.is_final());
        assert_eq!(
            "Sent".parse::<RunState>(),
            Err(UnknownRunState("Sent".into()))
        );
    }
}
