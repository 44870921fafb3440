//! The payment audit trail: one record per payment call, kept in memory (the latest
//! [`AUDIT_LEN`]) and written to the log, served at `GET /api/audit`.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

/// Records kept in memory; older ones live on in the log only.
pub const AUDIT_LEN: usize = 1000;

/// One audited payment call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When the call started (ms since the Unix epoch).
    pub at_ms: u64,
    /// Ties the record to the log lines and to the station's error reply.
    pub correlation: String,
    /// The station (the caller's principal).
    pub station: String,
    /// The ticket paid for, when the payload had one.
    pub ticket: Option<String>,
    /// The fee in won, when the payload had one.
    pub amount: Option<u64>,
    /// `ok` or `error`.
    pub outcome: &'static str,
    /// What failed: the full internal detail, since the trail is not shown to stations.
    pub error: Option<String>,
    /// How long the call took.
    pub duration_us: u64,
}

/// Where audit records go; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct PaymentAudit {
    inner: Arc<Mutex<Trail>>,
}

#[derive(Debug, Default)]
struct Trail {
    records: VecDeque<AuditRecord>,
    ok: u64,
    failed: u64,
}

impl PaymentAudit {
    /// Keeps one record (dropping the oldest past [`AUDIT_LEN`]) and logs it.
    pub fn record(&self, record: AuditRecord) {
        tracing::info!(
            target: "dispatch::audit",
            correlation = %record.correlation,
            station = %record.station,
            ticket = record.ticket.as_deref().unwrap_or(""),
            amount = record.amount.unwrap_or(0),
            outcome = record.outcome,
            error = record.error.as_deref().unwrap_or(""),
            duration_us = record.duration_us,
            "payment audited"
        );
        let mut trail = self.inner.lock();
        if record.outcome == "ok" {
            trail.ok += 1;
        } else {
            trail.failed += 1;
        }
        if trail.records.len() == AUDIT_LEN {
            trail.records.pop_front();
        }
        trail.records.push_back(record);
    }

    /// The latest `limit` records, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<AuditRecord> {
        let trail = self.inner.lock();
        let skip = trail.records.len().saturating_sub(limit);
        trail.records.iter().skip(skip).cloned().collect()
    }

    /// Payments audited so far: succeeded, failed.
    pub fn counts(&self) -> (u64, u64) {
        let trail = self.inner.lock();
        (trail.ok, trail.failed)
    }
}
