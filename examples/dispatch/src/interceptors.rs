//! Advice around the handlers: a log line for each operator command, kiosk call and
//! payment; the payment-audit record of each payment call; an alert when a station's
//! payments fail inside the server.
//!
//! Status reports (thousands a second) are not logged one by one: the board and the
//! alerts are their record.

use std::time::Instant;

use serde::Deserialize;
use stomp_runtime::advice::{self, HandlerResult, Invocation, Next};
use stomp_runtime::prelude::*;
use stomp_runtime::{ErrorKind, after_error, around};
use tracing::warn;

use crate::audit::{AuditRecord, PaymentAudit};
use crate::controllers::{ALERTS, CALL, COMMAND, PAYMENT};
use crate::model::now_ms;
use crate::state::Dispatch;

/// One structured log line per command, call and payment: handler, user, destination,
/// outcome, duration. Outermost, so that it times everything inside.
#[around(any(tag(COMMAND), tag(CALL), tag(PAYMENT)), order = -1000)]
pub async fn log_calls(inv: Invocation, next: Next) -> HandlerResult {
    advice::logged(inv, next).await
}

/// The fields of a payment the audit trail keeps.
#[derive(Deserialize)]
struct Paid {
    ticket: Option<String>,
    amount: Option<u64>,
}

/// One audit record per payment call: station, ticket, amount, outcome, duration,
/// correlation id (the one the station's error reply carries).
#[around(tag(PAYMENT), order = 10)]
pub async fn audit_payment(
    inv: Invocation,
    next: Next,
    State(audit): State<PaymentAudit>,
) -> HandlerResult {
    let started = Instant::now();
    let at_ms = now_ms();
    let paid = inv.extract::<Payload<Paid>>("payment").ok().map(|p| p.0);
    let correlation = inv.correlation_id().to_string();
    let station = inv
        .principal()
        .map_or_else(|| "anonymous".to_owned(), |p| p.name().to_owned());
    let result = next.run(inv).await;
    let (outcome, error) = match &result {
        Ok(_) => ("ok", None),
        Err(e) => (
            "error",
            Some(match e.source() {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            }),
        ),
    };
    audit.record(AuditRecord {
        at_ms,
        correlation,
        station,
        ticket: paid
            .as_ref()
            .and_then(|p| p.ticket.as_deref())
            .map(crate::model::clip),
        amount: paid.and_then(|p| p.amount),
        outcome,
        error,
        duration_us: started.elapsed().as_micros() as u64,
    });
    result
}

/// A payment that fails inside the server (the card processor down, a bug) is an
/// equipment problem for the operators; a declined card is not.
#[after_error(tag(PAYMENT))]
pub async fn payment_failure(
    inv: &Invocation,
    err: &StompError,
    State(dispatch): State<Dispatch>,
    template: MessagingTemplate,
) {
    if !matches!(err.kind(), ErrorKind::Internal | ErrorKind::Panic) {
        return;
    }
    let Some(station) = inv.var("id") else {
        return;
    };
    let detail = format!(
        "payments failing: internal error (ref {})",
        inv.correlation_id()
    );
    if let Some(alert) = dispatch.payment_error(station, &detail)
        && let Err(e) = template.convert_and_send(ALERTS, &alert).await
    {
        warn!(error = %e, "payment alert not published");
    }
}
