//! What travels between devices, the server and the boards, as JSON.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fleet::Kind;

/// Longest free text a device or a person may attach (a fault detail, a call's reason), in
/// characters; longer text is cut.
pub const MAX_TEXT_CHARS: usize = 200;

/// How a device says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Working.
    Ok,
    /// Working, but needs attention soon (paper low, barrier slow).
    Warning,
    /// Not working: an operator must act.
    Fault,
}

/// What a device SENDs to `/app/device.{id}.status`, once a second or on a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// How it is.
    pub state: Health,
    /// What is wrong, or what it is doing.
    #[serde(default)]
    pub detail: String,
    /// When the device took the reading (ms since the Unix epoch, the device's clock).
    #[serde(default)]
    pub sent_at: Option<u64>,
}

/// A device's state as the board shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not connected since the server started.
    Unseen,
    /// Connected and working.
    Ok,
    /// Connected, needs attention soon.
    Warning,
    /// Connected, not working.
    Fault,
    /// Was connected, and the connection ended (closed, lost, or silent past its heart-beat).
    Offline,
}

impl From<Health> for State {
    fn from(h: Health) -> Self {
        match h {
            Health::Ok => State::Ok,
            Health::Warning => State::Warning,
            Health::Fault => State::Fault,
        }
    }
}

/// One device on the board, broadcast on `/topic/board.devices` when its state changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    /// The device.
    pub id: String,
    /// What it is.
    pub kind: Kind,
    /// Where it is.
    pub area: String,
    /// How it is.
    pub state: State,
    /// The device's last detail.
    pub detail: String,
    /// Since when it is in this state (ms since the Unix epoch).
    pub since: u64,
    /// When it last reported (ms since the Unix epoch; 0 if never).
    pub last_report: u64,
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// A device reported a fault.
    Fault,
    /// A device's connection ended: closed, lost, or silent past its heart-beat.
    Offline,
    /// A kiosk's call button was pressed where no guide is on duty.
    UnansweredCall,
    /// A payment station's payments fail inside the server.
    PaymentError,
}

/// An alert, broadcast on `/topic/alerts`; the same `id` with `cleared: true` when it is
/// over (the device recovered or came back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique on this server.
    pub id: u64,
    /// What about.
    pub kind: AlertKind,
    /// The device.
    pub device: String,
    /// Its area.
    pub area: String,
    /// What happened, for a person.
    pub detail: String,
    /// When it happened at the source (ms since the Unix epoch): the device's reading for a
    /// fault, the last frame heard for a device gone offline.
    pub reported_at: u64,
    /// When the server raised (or cleared) it.
    pub raised_at: u64,
    /// Whether this clears the alert of the same id.
    pub cleared: bool,
}

/// What an operator can tell a device to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Raise a gate's barrier.
    Open,
    /// Lower a gate's barrier.
    Close,
    /// Restart a kiosk or a payment station.
    Restart,
}

/// A command, delivered to the device alone on its `/user/queue/commands`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Unique on this server (`c-17`); the device's acknowledgement names it.
    pub id: String,
    /// The device.
    pub device: String,
    /// What to do.
    pub action: Action,
    /// The operator who asked.
    pub issued_by: String,
    /// When (ms since the Unix epoch).
    pub issued_at: u64,
}

/// What a device SENDs to `/app/device.{id}.ack` once it has carried out a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAck {
    /// The command's id.
    pub command: String,
    /// Whether it worked.
    pub ok: bool,
    /// Why not, or what happened.
    #[serde(default)]
    pub detail: String,
}

/// Where a command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandStatus {
    /// Delivered to the device's sessions; no answer yet.
    Sent,
    /// The device carried it out.
    Done,
    /// The device tried and failed.
    Failed,
    /// No answer within the deadline.
    TimedOut,
}

/// A command's progress, broadcast on `/topic/board.commands`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandEvent {
    /// The command.
    pub command: Command,
    /// Where it is.
    pub status: CommandStatus,
    /// The device's detail, or why it timed out.
    pub detail: String,
    /// From the operator's SEND reaching the server to the device's answer reaching it.
    pub round_trip_ms: Option<f64>,
}

/// What a kiosk SENDs to `/app/kiosk.{id}.call` when its call button is pressed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRequest {
    /// What the driver chose on the screen ("lost ticket", "payment problem").
    #[serde(default)]
    pub reason: String,
}

/// A call from a kiosk, delivered on `/user/queue/calls` to the guides on duty in its area.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Unique on this server.
    pub id: u64,
    /// The kiosk.
    pub kiosk: String,
    /// Its area.
    pub area: String,
    /// The driver's reason.
    pub reason: String,
    /// When (ms since the Unix epoch).
    pub at: u64,
    /// The guides it reached (empty: none on duty; the operators got an alert instead).
    pub guides: Vec<String>,
}

/// What a payment station SENDs to `/app/station.{id}.payment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    /// The parking ticket paid for.
    pub ticket: String,
    /// The fee, in won (KRW has no minor unit).
    pub amount: u64,
    /// The card number read by the terminal.
    pub card: String,
}

/// A paid ticket, answered on the station's `/user/queue/payments`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReceipt {
    /// Unique on this server.
    pub payment_id: String,
    /// The ticket.
    pub ticket: String,
    /// The fee, in won.
    pub amount: u64,
    /// The station.
    pub station: String,
    /// The card's last four digits.
    pub last4: String,
}

/// Counts of devices by state.
pub type Counts = BTreeMap<State, usize>;

/// One area on the board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaSummary {
    /// The area.
    pub area: String,
    /// Its devices by state.
    pub counts: Counts,
    /// The guides on duty there.
    pub guides: Vec<String>,
}

/// The whole fleet at a glance, broadcast on `/topic/board.summary` every second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// When (ms since the Unix epoch).
    pub at: u64,
    /// Every device by state.
    pub totals: Counts,
    /// Per area, in [`AREAS`](crate::fleet::AREAS) order.
    pub areas: Vec<AreaSummary>,
    /// Payments audited so far: succeeded, failed.
    pub payments: (u64, u64),
    /// Commands awaiting an answer.
    pub pending_commands: usize,
}

/// What a board gets when it subscribes to `/app/board.overview`: the summary and the open
/// alerts, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// The fleet at a glance.
    pub summary: Summary,
    /// Alerts not cleared yet, newest first (at most [`MAX_OVERVIEW_ALERTS`]).
    pub alerts: Vec<Alert>,
}

/// Who a session is, as `/app/whoami` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The login.
    pub name: String,
    /// Roles (`operator`, `guide`, `device`).
    pub roles: Vec<String>,
    /// The area a guide covers or a device stands in.
    pub area: Option<String>,
}

/// Most open alerts an overview lists.
pub const MAX_OVERVIEW_ALERTS: usize = 200;

/// Milliseconds since the Unix epoch; 0 on a clock set before 1970.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `text` without surrounding blanks, cut to [`MAX_TEXT_CHARS`].
pub fn clip(text: &str) -> String {
    text.trim().chars().take(MAX_TEXT_CHARS).collect()
}
