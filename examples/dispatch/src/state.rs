//! The live picture: each device's state and sessions, the open alerts, the commands
//! awaiting an answer, and the guides on duty. Registered on the server builder and taken by
//! handlers as `State<Dispatch>`; the session listener and the housekeeping task hold
//! clones.
//!
//! Every method here is synchronous and short (one lock, no I/O); it returns what must be
//! published, and the callers publish it after the lock is released.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use stomp_runtime::StompError;

use crate::fleet::{AREAS, Device, Fleet, Kind};
use crate::model::{
    Action, Alert, AlertKind, AreaSummary, Call, Command, CommandAck, CommandEvent, CommandStatus,
    DeviceView, MAX_OVERVIEW_ALERTS, Overview, State, StatusReport, Summary, clip, now_ms,
};

/// How long a device has to answer a command before the board shows it timed out.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Most commands one device may have unanswered: an operator clicking "open" ten times on a
/// jammed gate needs one answer, not a queue.
pub const MAX_PENDING_PER_DEVICE: usize = 4;
/// Most sessions one device may hold at once (a restarted device reconnects before its old
/// connection has timed out); further logins still connect, but are not tracked.
const MAX_SESSIONS_PER_DEVICE: usize = 4;

/// What a status report changed.
#[derive(Debug, Default)]
pub struct Reported {
    /// The device's new look, when its state changed.
    pub view: Option<DeviceView>,
    /// An alert raised or cleared by the change.
    pub alert: Option<Alert>,
}

/// The live picture of the fleet; a cheap handle (clones share it).
#[derive(Clone)]
pub struct Dispatch {
    fleet: Fleet,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("devices", &self.fleet.len())
            .finish_non_exhaustive()
    }
}

struct Live {
    state: State,
    detail: String,
    since: u64,
    last_report: u64,
    sessions: Vec<Arc<str>>,
    pending: usize,
}

struct Pending {
    command: Command,
    index: usize,
    issued: Instant,
}

struct Inner {
    live: Vec<Live>,
    open: HashMap<(usize, AlertKind), Alert>,
    pending: HashMap<String, Pending>,
    /// area → guide → the sessions through which the guide listens for calls.
    duty: BTreeMap<&'static str, BTreeMap<String, BTreeSet<Arc<str>>>>,
    next_alert: u64,
    next_command: u64,
    next_call: u64,
    next_payment: u64,
}

impl Dispatch {
    /// Every device of `fleet`, none seen yet.
    pub fn new(fleet: Fleet) -> Self {
        let now = now_ms();
        let live = fleet
            .devices()
            .iter()
            .map(|_| Live {
                state: State::Unseen,
                detail: String::new(),
                since: now,
                last_report: 0,
                sessions: Vec::new(),
                pending: 0,
            })
            .collect();
        let inner = Inner {
            live,
            open: HashMap::new(),
            pending: HashMap::new(),
            duty: AREAS.iter().map(|a| (*a, BTreeMap::new())).collect(),
            next_alert: 1,
            next_command: 1,
            next_call: 1,
            next_payment: 1,
        };
        Self {
            fleet,
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// The fleet.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    fn index(&self, id: &str) -> Result<(usize, &Device), StompError> {
        self.fleet
            .position(id)
            .map(|i| (i, &self.fleet.devices()[i]))
            .ok_or_else(|| StompError::new(format!("there is no device `{}`", clip(id))))
    }

    /// Records a status report of device `id`.
    pub fn report(&self, id: &str, report: &StatusReport) -> Result<Reported, StompError> {
        let (i, device) = self.index(id)?;
        let now = now_ms();
        let state = State::from(report.state);
        let mut inner = self.inner.lock();
        let live = &mut inner.live[i];
        live.last_report = now;
        let old = live.state;
        let detail = clip(&report.detail);
        if old == state {
            live.detail = detail;
            return Ok(Reported::default());
        }
        live.state = state;
        live.since = now;
        live.detail = detail.clone();
        let view = view(device, live);
        let alert = if state == State::Fault {
            let reported_at = report.sent_at.unwrap_or(now);
            let text = if detail.is_empty() {
                "fault".to_owned()
            } else {
                detail
            };
            Some(inner.raise(i, device, AlertKind::Fault, text, reported_at))
        } else if old == State::Fault {
            inner.clear(i, AlertKind::Fault)
        } else {
            None
        };
        Ok(Reported {
            view: Some(view),
            alert,
        })
    }

    /// A session of device `id` connected; clears its offline alert if it had one.
    pub fn connected(&self, id: &str, session: &Arc<str>) -> Option<Alert> {
        let (i, _) = self.index(id).ok()?;
        let mut inner = self.inner.lock();
        let sessions = &mut inner.live[i].sessions;
        if sessions.len() < MAX_SESSIONS_PER_DEVICE {
            sessions.push(session.clone());
        }
        inner.clear(i, AlertKind::Offline)
    }

    /// A session of device `id` ended; once its last one has, the device is offline: its
    /// new look and the alert.
    pub fn disconnected(&self, id: &str, session: &str) -> Option<(DeviceView, Alert)> {
        let (i, device) = self.index(id).ok()?;
        let mut inner = self.inner.lock();
        let live = &mut inner.live[i];
        let before = live.sessions.len();
        live.sessions.retain(|s| &**s != session);
        if live.sessions.len() == before || !live.sessions.is_empty() {
            return None;
        }
        let now = now_ms();
        let last_heard = if live.last_report == 0 {
            now
        } else {
            live.last_report
        };
        live.state = State::Offline;
        live.since = now;
        let view = view(device, live);
        let detail = format!(
            "connection lost ({} s after its last report)",
            now.saturating_sub(last_heard) / 1000
        );
        let alert = inner.raise(i, device, AlertKind::Offline, detail, last_heard);
        Some((view, alert))
    }

    /// Makes a command for device `id`, if it takes `action`, is online and has room.
    pub fn issue(&self, id: &str, action: Action, operator: &str) -> Result<Command, StompError> {
        let (i, device) = self.index(id)?;
        let takes = match device.kind {
            Kind::Gate => matches!(action, Action::Open | Action::Close),
            Kind::Kiosk | Kind::Station => action == Action::Restart,
        };
        if !takes {
            return Err(StompError::new(format!(
                "a {} cannot {}",
                device.kind,
                serde_json::to_value(action)?.as_str().unwrap_or("do that")
            )));
        }
        let mut inner = self.inner.lock();
        let live = &mut inner.live[i];
        if live.sessions.is_empty() {
            return Err(StompError::new(format!(
                "{id} is not connected: the command cannot reach it"
            )));
        }
        if live.pending >= MAX_PENDING_PER_DEVICE {
            return Err(StompError::new(format!(
                "{id} has {MAX_PENDING_PER_DEVICE} commands unanswered already"
            )));
        }
        live.pending += 1;
        let command = Command {
            id: format!("c-{}", inner.next_command),
            device: device.id.clone(),
            action,
            issued_by: operator.to_owned(),
            issued_at: now_ms(),
        };
        inner.next_command += 1;
        inner.pending.insert(
            command.id.clone(),
            Pending {
                command: command.clone(),
                index: i,
                issued: Instant::now(),
            },
        );
        Ok(command)
    }

    /// Device `id` answered a command addressed to it.
    pub fn acknowledge(&self, id: &str, ack: &CommandAck) -> Result<CommandEvent, StompError> {
        let mut inner = self.inner.lock();
        let pending = match inner.pending.remove(&ack.command) {
            Some(p) if p.command.device == id => p,
            other => {
                if let Some(p) = other {
                    inner.pending.insert(ack.command.clone(), p);
                }
                return Err(StompError::new(format!(
                    "no command `{}` is waiting for {id}",
                    clip(&ack.command)
                )));
            }
        };
        inner.live[pending.index].pending -= 1;
        Ok(CommandEvent {
            command: pending.command,
            status: if ack.ok {
                CommandStatus::Done
            } else {
                CommandStatus::Failed
            },
            detail: clip(&ack.detail),
            round_trip_ms: Some(pending.issued.elapsed().as_secs_f64() * 1000.0),
        })
    }

    /// Gives up on commands older than [`COMMAND_TIMEOUT`].
    pub fn expire_commands(&self) -> Vec<CommandEvent> {
        let mut inner = self.inner.lock();
        let late: Vec<String> = inner
            .pending
            .iter()
            .filter(|(_, p)| p.issued.elapsed() >= COMMAND_TIMEOUT)
            .map(|(id, _)| id.clone())
            .collect();
        let expired: Vec<Pending> = late
            .into_iter()
            .filter_map(|id| inner.pending.remove(&id))
            .collect();
        expired
            .into_iter()
            .map(|p| {
                inner.live[p.index].pending -= 1;
                CommandEvent {
                    command: p.command,
                    status: CommandStatus::TimedOut,
                    detail: format!("no answer within {} s", COMMAND_TIMEOUT.as_secs()),
                    round_trip_ms: None,
                }
            })
            .collect()
    }

    /// Guide `name` listens for calls in `area` through `session`.
    pub fn on_duty(&self, name: &str, area: &str, session: &Arc<str>) {
        let mut inner = self.inner.lock();
        if let Some(guides) = inner.duty.get_mut(area) {
            guides
                .entry(name.to_owned())
                .or_default()
                .insert(session.clone());
        }
    }

    /// Guide `name` stopped listening through `session` (unsubscribed or disconnected).
    pub fn off_duty(&self, name: &str, session: &str) {
        let mut inner = self.inner.lock();
        for guides in inner.duty.values_mut() {
            if let Some(sessions) = guides.get_mut(name) {
                sessions.remove(session);
                if sessions.is_empty() {
                    guides.remove(name);
                }
            }
        }
    }

    /// Kiosk `id`'s call button: the call, addressed to the guides on duty in its area;
    /// with none there, the alert for the operators instead.
    pub fn call(&self, id: &str, reason: &str) -> Result<(Call, Option<Alert>), StompError> {
        let (i, device) = self.index(id)?;
        if device.kind != Kind::Kiosk {
            return Err(StompError::new(format!(
                "{id} is a {}; only kiosks have a call button",
                device.kind
            )));
        }
        let mut inner = self.inner.lock();
        let guides: Vec<String> = inner
            .duty
            .get(device.area)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default();
        let reason = clip(reason);
        let call = Call {
            id: inner.next_call,
            kiosk: device.id.clone(),
            area: device.area.to_owned(),
            reason: reason.clone(),
            at: now_ms(),
            guides,
        };
        inner.next_call += 1;
        let alert = call.guides.is_empty().then(|| {
            let detail = format!("call ({reason}): no guide on duty in {}", device.area);
            inner.event(i, device, AlertKind::UnansweredCall, detail, call.at)
        });
        Ok((call, alert))
    }

    /// An alert for a payment station whose payments fail inside the server.
    pub fn payment_error(&self, id: &str, detail: &str) -> Option<Alert> {
        let (i, device) = self.index(id).ok()?;
        let now = now_ms();
        Some(
            self.inner
                .lock()
                .event(i, device, AlertKind::PaymentError, clip(detail), now),
        )
    }

    /// A fresh payment id (`p-17`).
    pub fn next_payment_id(&self) -> String {
        let mut inner = self.inner.lock();
        inner.next_payment += 1;
        format!("p-{}", inner.next_payment - 1)
    }

    /// The devices of `area`, in fleet order.
    pub fn area(&self, area: &str) -> Result<Vec<DeviceView>, StompError> {
        if !AREAS.contains(&area) {
            return Err(StompError::new(format!(
                "there is no area `{}`; the areas are {}",
                clip(area),
                AREAS.join(", ")
            )));
        }
        let inner = self.inner.lock();
        Ok(self
            .fleet
            .devices()
            .iter()
            .zip(&inner.live)
            .filter(|(d, _)| d.area == area)
            .map(|(d, l)| view(d, l))
            .collect())
    }

    /// The fleet at a glance; `payments` are the audit's counts (succeeded, failed).
    pub fn summary(&self, payments: (u64, u64)) -> Summary {
        let inner = self.inner.lock();
        let mut totals = BTreeMap::new();
        let mut per_area: BTreeMap<&str, BTreeMap<State, usize>> = BTreeMap::new();
        for (d, l) in self.fleet.devices().iter().zip(&inner.live) {
            *totals.entry(l.state).or_default() += 1;
            *per_area
                .entry(d.area)
                .or_default()
                .entry(l.state)
                .or_default() += 1;
        }
        let areas = AREAS
            .iter()
            .map(|a| AreaSummary {
                area: (*a).to_owned(),
                counts: per_area.remove(a).unwrap_or_default(),
                guides: inner
                    .duty
                    .get(a)
                    .map(|g| g.keys().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect();
        Summary {
            at: now_ms(),
            totals,
            areas,
            payments,
            pending_commands: inner.pending.len(),
        }
    }

    /// The summary and the open alerts, newest first.
    pub fn overview(&self, payments: (u64, u64)) -> Overview {
        let summary = self.summary(payments);
        let inner = self.inner.lock();
        let mut alerts: Vec<Alert> = inner.open.values().cloned().collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.id));
        alerts.truncate(MAX_OVERVIEW_ALERTS);
        Overview { summary, alerts }
    }
}

impl Inner {
    /// A one-off alert (not kept open).
    fn event(
        &mut self,
        _index: usize,
        device: &Device,
        kind: AlertKind,
        detail: String,
        reported_at: u64,
    ) -> Alert {
        let id = self.next_alert;
        self.next_alert += 1;
        Alert {
            id,
            kind,
            device: device.id.clone(),
            area: device.area.to_owned(),
            detail,
            reported_at,
            raised_at: now_ms(),
            cleared: false,
        }
    }

    /// An alert kept open until cleared; a device has at most one open per kind.
    fn raise(
        &mut self,
        index: usize,
        device: &Device,
        kind: AlertKind,
        detail: String,
        reported_at: u64,
    ) -> Alert {
        let alert = self.event(index, device, kind, detail, reported_at);
        self.open.insert((index, kind), alert.clone());
        alert
    }

    /// Clears the device's open alert of `kind`, if any: the clearing message.
    fn clear(&mut self, index: usize, kind: AlertKind) -> Option<Alert> {
        let mut alert = self.open.remove(&(index, kind))?;
        alert.cleared = true;
        alert.raised_at = now_ms();
        Some(alert)
    }
}

fn view(device: &Device, live: &Live) -> DeviceView {
    DeviceView {
        id: device.id.clone(),
        kind: device.kind,
        area: device.area.to_owned(),
        state: live.state,
        detail: live.detail.clone(),
        since: live.since,
        last_report: live.last_report,
    }
}
