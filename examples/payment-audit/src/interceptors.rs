//! The three interceptors: a logging advice on every handler, the payment-audit advice,
//! and a failure tracker; plus the answer to a declined card.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use stomp_runtime::advice::{self, HandlerResult, Invocation, Next};
use stomp_runtime::prelude::*;
use stomp_runtime::{ErrorKind, after_error, around, message_exception_handler};
use tracing::error;

use crate::audit::{AuditRecord, AuditSink};
use crate::controllers::PAYMENT;
use crate::failures::FailureTracker;
use crate::gateway::Declined;

/// One structured log line per call of any handler: handler, user, destination, outcome,
/// duration. Outermost, so that it times everything inside.
#[around(order = -1000)]
pub async fn log_calls(inv: Invocation, next: Next) -> HandlerResult {
    advice::logged(inv, next).await
}

/// The fields of a payment payload the audit trail keeps.
#[derive(Deserialize)]
struct Amount {
    amount_cents: Option<i64>,
    currency: Option<String>,
}

/// One audit record per payment call: who, what, amount, outcome, duration, correlation id.
#[around(tag(PAYMENT), order = 10)]
pub async fn audit_payment(
    inv: Invocation,
    next: Next,
    State(audit): State<AuditSink>,
) -> HandlerResult {
    let started = Instant::now();
    let at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let amount = inv.extract::<Payload<Amount>>("payment").ok().map(|p| p.0);
    let mut record = AuditRecord {
        at_ms,
        correlation: inv.correlation_id().to_string(),
        user: inv
            .principal()
            .map_or_else(|| "anonymous".to_owned(), |p| p.name().to_owned()),
        session: inv.session_id().to_owned(),
        handler: inv.handler().name.to_owned(),
        destination: inv.destination().to_owned(),
        amount_cents: amount.as_ref().and_then(|a| a.amount_cents),
        currency: amount.and_then(|a| a.currency),
        outcome: String::new(),
        error: None,
        duration_us: 0,
    };
    let result = next.run(inv).await;
    record.duration_us = started.elapsed().as_micros() as i64;
    match &result {
        Ok(_) => record.outcome = "ok".into(),
        Err(e) => {
            record.outcome = "error".into();
            record.error = Some(match e.source() {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            });
        }
    }
    if let Err(e) = audit.record(record).await {
        // The call's outcome stands; the missing record is loud in the log.
        error!(error = %e, "audit record not written");
    }
    result
}

/// Counts failures per handler and kind.
#[after_error("/payment.**")]
pub async fn track_failure(inv: &Invocation, err: &StompError, State(t): State<FailureTracker>) {
    let kind = match err.kind() {
        ErrorKind::Application => "application",
        ErrorKind::Internal => "internal",
        ErrorKind::Extract { .. } => "bad-request",
        ErrorKind::Panic => "panic",
        ErrorKind::Denied => "denied",
        _ => "other",
    };
    t.count(inv.handler().name, kind);
}

/// A declined card is answered with the reason, on the payer's `/user/queue/errors`.
#[message_exception_handler("/payment.**")]
pub async fn declined(err: &Declined, inv: &Invocation) -> serde_json::Value {
    serde_json::json!({
        "error": "card declined",
        "reason": err.reason,
        "last4": err.last4,
        "correlation": inv.correlation_id().to_string(),
    })
}
