//! The audit sink: one row per payment call in an embedded SQLite database, so the trail
//! outlives restarts and can be queried with any SQLite tool.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, params};
use serde::Serialize;

/// One audited payment call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch when the call started.
    pub at_ms: i64,
    /// Ties the record to the log lines and the client's error reply.
    pub correlation: String,
    /// Who (the principal's name, or `anonymous`).
    pub user: String,
    /// The session.
    pub session: String,
    /// The handler's path.
    pub handler: String,
    /// The destination called.
    pub destination: String,
    /// The amount, when the payload had one.
    pub amount_cents: Option<i64>,
    /// The currency, when the payload had one.
    pub currency: Option<String>,
    /// `ok` or `error`.
    pub outcome: String,
    /// What failed (the full internal detail: the audit trail is not client-facing).
    pub error: Option<String>,
    /// How long the call took.
    pub duration_us: i64,
}

/// Where audit records go; cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    db: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditSink")
    }
}

impl AuditSink {
    /// Opens (creating if needed) the database at `path`; `:memory:` keeps it in memory.
    pub fn open(path: impl AsRef<Path>) -> rusqlite::Result<Self> {
        let path = path.as_ref();
        let db = if path.as_os_str() == ":memory:" {
            Connection::open_in_memory()?
        } else {
            Connection::open(path)?
        };
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS audit (
                 id           INTEGER PRIMARY KEY AUTOINCREMENT,
                 at_ms        INTEGER NOT NULL,
                 correlation  TEXT NOT NULL,
                 user         TEXT NOT NULL,
                 session      TEXT NOT NULL,
                 handler      TEXT NOT NULL,
                 destination  TEXT NOT NULL,
                 amount_cents INTEGER,
                 currency     TEXT,
                 outcome      TEXT NOT NULL,
                 error        TEXT,
                 duration_us  INTEGER NOT NULL
             );",
        )?;
        Ok(Self {
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// Stores one record (on a blocking thread: SQLite does file I/O).
    pub async fn record(&self, r: AuditRecord) -> Result<(), String> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            db.lock()
                .execute(
                    "INSERT INTO audit (at_ms, correlation, user, session, handler, destination,
                                        amount_cents, currency, outcome, error, duration_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        r.at_ms,
                        r.correlation,
                        r.user,
                        r.session,
                        r.handler,
                        r.destination,
                        r.amount_cents,
                        r.currency,
                        r.outcome,
                        r.error,
                        r.duration_us
                    ],
                )
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The latest `limit` records, newest last.
    pub async fn recent(&self, limit: u32) -> Result<Vec<AuditRecord>, String> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let db = db.lock();
            let mut stmt = db
                .prepare(
                    "SELECT at_ms, correlation, user, session, handler, destination, amount_cents,
                            currency, outcome, error, duration_us
                     FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id",
                )
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([limit], |row| {
                    Ok(AuditRecord {
                        at_ms: row.get(0)?,
                        correlation: row.get(1)?,
                        user: row.get(2)?,
                        session: row.get(3)?,
                        handler: row.get(4)?,
                        destination: row.get(5)?,
                        amount_cents: row.get(6)?,
                        currency: row.get(7)?,
                        outcome: row.get(8)?,
                        error: row.get(9)?,
                        duration_us: row.get(10)?,
                    })
                })
                .map_err(|e| e.to_string())?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
