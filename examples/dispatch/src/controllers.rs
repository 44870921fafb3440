//! The message handlers, Spring-controller style.
//!
//! | who      | sends or subscribes to                   | handler        | the answer goes to |
//! |----------|------------------------------------------|----------------|--------------------|
//! | device   | SEND `/app/device.{id}.status`           | [`status`]     | `/topic/board.devices` on a change, `/topic/alerts` on a fault |
//! | device   | SEND `/app/device.{id}.ack`              | [`ack`]        | `/topic/board.commands` |
//! | kiosk    | SEND `/app/kiosk.{id}.call`              | [`call`]       | the area's guides' `/user/queue/calls`, the kiosk's too |
//! | station  | SEND `/app/station.{id}.payment`         | [`payment`]    | the station's `/user/queue/payments` |
//! | operator | SEND `/app/gate.{id}.open` / `.close`    | [`open_gate`], [`close_gate`] | the gate's `/user/queue/commands`, `/topic/board.commands` |
//! | operator | SEND `/app/kiosk.{id}.restart`           | [`restart_kiosk`] | as above |
//! | operator | SEND `/app/station.{id}.restart`         | [`restart_station`] | as above |
//! | anyone   | SUBSCRIBE `/app/whoami`                  | [`whoami`]     | the subscriber, once |
//! | operator | SUBSCRIBE `/app/board.overview`          | [`overview`]   | the subscriber, once |
//! | operator | SUBSCRIBE `/app/board.area.{area}`       | [`area`]       | the subscriber, once |
//! | operator | SUBSCRIBE `/app/board.payments`          | [`payments`]   | the subscriber, once |
//!
//! Failures reach the sender on `/user/queue/errors`.

use stomp_runtime::advice::Tag;
use stomp_runtime::prelude::*;
use tracing::warn;

use crate::audit::{AuditRecord, PaymentAudit};
use crate::auth::area_of;
use crate::fleet::Kind;
use crate::model::{
    Action, Call, CallRequest, CommandAck, CommandEvent, CommandStatus, DeviceView, Me, Overview,
    PaymentReceipt, PaymentRequest, StatusReport,
};
use crate::state::Dispatch;

/// Marks the operators' commands (logged by [`log_calls`](crate::interceptors::log_calls)).
pub const COMMAND: Tag = Tag::new("command");
/// Marks payment calls (audited by [`audit_payment`](crate::interceptors::audit_payment)).
pub const PAYMENT: Tag = Tag::new("payment");
/// Marks kiosk calls (logged).
pub const CALL: Tag = Tag::new("call");

/// Where alerts go.
pub const ALERTS: &str = "/topic/alerts";
/// Where devices' state changes go.
pub const BOARD_DEVICES: &str = "/topic/board.devices";
/// Where commands' progress goes.
pub const BOARD_COMMANDS: &str = "/topic/board.commands";
/// Where the summary goes every second.
pub const BOARD_SUMMARY: &str = "/topic/board.summary";

/// Largest fee a station may charge, in won: a month in the long-term lot is far below it.
pub const MAX_FEE: u64 = 10_000_000;

/// The device must be the one named in the destination. The guard refuses other frames
/// before they get here; this keeps the handler right on its own.
fn same_device(user: &Principal, id: &str) -> Result<(), StompError> {
    if user.name() == id {
        Ok(())
    } else {
        Err(StompError::denied(format!(
            "{} cannot speak for {id}",
            user.name()
        )))
    }
}

/// A device reports how it is; the board hears of changes, the operators of faults.
#[message_mapping("/device.{id}.status", roles = ["device"])]
#[send_to("/topic/board.devices")]
pub async fn status(
    user: Principal,
    DestinationVar(id): DestinationVar<String>,
    Payload(report): Payload<StatusReport>,
    State(dispatch): State<Dispatch>,
    template: MessagingTemplate,
) -> Result<Option<DeviceView>, StompError> {
    same_device(&user, &id)?;
    let reported = dispatch.report(&id, &report)?;
    if let Some(alert) = reported.alert {
        template.convert_and_send(ALERTS, &alert).await?;
    }
    Ok(reported.view)
}

/// A device answers a command it was sent; the board shows the round trip.
#[message_mapping("/device.{id}.ack", roles = ["device"])]
#[send_to("/topic/board.commands")]
pub async fn ack(
    user: Principal,
    DestinationVar(id): DestinationVar<String>,
    Payload(ack): Payload<CommandAck>,
    State(dispatch): State<Dispatch>,
) -> Result<CommandEvent, StompError> {
    same_device(&user, &id)?;
    dispatch.acknowledge(&id, &ack)
}

/// Sends `action` to device `id` alone (its principal's `/user/queue/commands`).
async fn issue(
    dispatch: &Dispatch,
    template: &MessagingTemplate,
    operator: &Principal,
    id: &str,
    action: Action,
) -> Result<CommandEvent, StompError> {
    let command = dispatch.issue(id, action, operator.name())?;
    template
        .convert_and_send_to_user(id, "/queue/commands", &command)
        .await?;
    Ok(CommandEvent {
        command,
        status: CommandStatus::Sent,
        detail: String::new(),
        round_trip_ms: None,
    })
}

/// Raises a gate's barrier.
#[message_mapping("/gate.{id}.open", roles = ["operator"], tags = [COMMAND])]
#[send_to("/topic/board.commands")]
pub async fn open_gate(
    user: Principal,
    DestinationVar(id): DestinationVar<String>,
    State(dispatch): State<Dispatch>,
    template: MessagingTemplate,
) -> Result<CommandEvent, StompError> {
    issue(&dispatch, &template, &user, &id, Action::Open).await
}

/// Lowers a gate's barrier.
#[message_mapping("/gate.{id}.close", roles = ["operator"], tags = [COMMAND])]
#[send_to("/topic/board.commands")]
pub async fn close_gate(
    user: Principal,
    DestinationVar(id): DestinationVar<String>,
    State(dispatch): State<Dispatch>,
    template: MessagingTemplate,
) -> Result<CommandEvent, StompError> {
    issue(&dispatch, &template, &user, &id, Action::Close).await
}

/// Restarts a kiosk.
#[message_mapping("/kiosk.{id}.restart", roles = ["operator"], tags = [COMMAND])]
#[send_to("/topic/board.commands")]
pub async fn restart_kiosk(
    user: Principal,
    DestinationVar(id): DestinationVar<String>,
    State(dispatch): State<Dispatch>,
    template: MessagingTemplate,
) -> Result<CommandEvent, StompError> {
    kind_is(&dispatch, &id, Kind::Kiosk)?;
    issue(&dispatch, &template, &user, &id, Action::Restart).await
}

/// Restarts a payment station.
#[message_mapping("/station.{id}.restart", roles = ["operator"], tags = [COMMAND])]
#[send_to("/topic/board.commands")]
pub async fn restart_station(
    user: Principal,
    DestinationVar(id): DestinationVar<String>,
    State(dispatch): State<Dispatch>,
    template: MessagingTemplate,
) -> Result<CommandEvent, StompError> {
    kind_is(&dispatch, &id, Kind::Station)?;
    issue(&dispatch, &template, &user, &id, Action::Restart).await
}

/// `/app/kiosk.gate-0001.restart` names a gate: say so rather than "a gate cannot restart".
fn kind_is(dispatch: &Dispatch, id: &str, kind: Kind) -> Result<(), StompError> {
    match dispatch.fleet().get(id) {
        Some(d) if d.kind != kind => Err(StompError::new(format!("{id} is not a {kind}"))),
        _ => Ok(()),
    }
}

/// A kiosk's call button: the guides on duty in its area hear of it, and the kiosk learns
/// whether anyone did; with no guide on duty, the operators get an alert.
#[message_mapping("/kiosk.{id}.call", roles = ["device"], tags = [CALL])]
#[send_to_user("/queue/calls", broadcast = false)]
pub async fn call(
    user: Principal,
    DestinationVar(id): DestinationVar<String>,
    request: Option<Payload<CallRequest>>,
    State(dispatch): State<Dispatch>,
    template: MessagingTemplate,
) -> Result<Call, StompError> {
    same_device(&user, &id)?;
    let reason = request.map(|Payload(r)| r.reason).unwrap_or_default();
    let (call, alert) = dispatch.call(&id, &reason)?;
    for guide in &call.guides {
        if let Err(e) = template
            .convert_and_send_to_user(guide, "/queue/calls", &call)
            .await
        {
            warn!(guide, error = %e, "call not delivered");
        }
    }
    if let Some(alert) = alert {
        template.convert_and_send(ALERTS, &alert).await?;
    }
    Ok(call)
}

/// The test card numbers a station's terminal may read, as card processors document them.
pub mod test_cards {
    /// Declined for insufficient funds.
    pub const DECLINED: &str = "4000000000000002";
    /// The processor does not answer.
    pub const UNREACHABLE: &str = "4000000000000119";
}

/// The card processor could not be reached: an internal error, whose detail reaches the
/// audit trail and the log but never the station.
#[derive(Debug, thiserror::Error)]
#[error("card processor at {0} did not answer within 3 s")]
pub struct ProcessorDown(&'static str);

/// A payment station charges a parking fee; the payment-audit advice records every call.
#[message_mapping("/station.{id}.payment", roles = ["device"], tags = [PAYMENT])]
#[send_to_user("/queue/payments", broadcast = false)]
pub async fn payment(
    user: Principal,
    DestinationVar(id): DestinationVar<String>,
    Payload(req): Payload<PaymentRequest>,
    State(dispatch): State<Dispatch>,
) -> Result<PaymentReceipt, StompError> {
    same_device(&user, &id)?;
    if dispatch.fleet().get(&id).map(|d| d.kind) != Some(Kind::Station) {
        return Err(StompError::new(format!("{id} is not a payment station")));
    }
    let ticket = req.ticket.trim();
    if ticket.is_empty() || ticket.chars().count() > 32 {
        return Err(StompError::new(
            "the ticket number must be 1 to 32 characters",
        ));
    }
    if req.amount == 0 || req.amount > MAX_FEE {
        return Err(StompError::new(format!(
            "the fee must be between 1 and {MAX_FEE} won, not {}",
            req.amount
        )));
    }
    let digits: String = req.card.chars().filter(char::is_ascii_digit).collect();
    if !(12..=19).contains(&digits.len()) {
        return Err(StompError::new("the card number must have 12 to 19 digits"));
    }
    match digits.as_str() {
        test_cards::DECLINED => return Err(StompError::new("card declined: insufficient funds")),
        test_cards::UNREACHABLE => {
            return Err(StompError::internal(ProcessorDown("pg.internal:443")));
        }
        _ => {}
    }
    Ok(PaymentReceipt {
        payment_id: dispatch.next_payment_id(),
        ticket: ticket.to_owned(),
        amount: req.amount,
        station: id,
        last4: digits[digits.len() - 4..].to_owned(),
    })
}

/// Who the caller is, once, to a page that subscribes: it shows operators the board and
/// guides their calls.
#[subscribe_mapping("/whoami")]
pub async fn whoami(user: Principal) -> Me {
    Me {
        name: user.name().to_owned(),
        roles: user
            .authorities()
            .filter_map(|a| a.strip_prefix("ROLE_"))
            .map(str::to_owned)
            .collect(),
        area: area_of(&user).map(str::to_owned),
    }
}

/// The summary and the open alerts, once, to a board that subscribes.
#[subscribe_mapping("/board.overview", roles = ["operator"])]
pub async fn overview(
    State(dispatch): State<Dispatch>,
    State(audit): State<PaymentAudit>,
) -> Overview {
    dispatch.overview(audit.counts())
}

/// The latest payment audit records (at most 50), once, to a board that subscribes.
#[subscribe_mapping("/board.payments", roles = ["operator"])]
pub async fn payments(State(audit): State<PaymentAudit>) -> Vec<AuditRecord> {
    audit.recent(50)
}

/// Every device of an area, once, to a board that subscribes.
#[subscribe_mapping("/board.area.{area}", roles = ["operator"])]
pub async fn area(
    DestinationVar(area): DestinationVar<String>,
    State(dispatch): State<Dispatch>,
) -> Result<Vec<DeviceView>, StompError> {
    dispatch.area(&area)
}
