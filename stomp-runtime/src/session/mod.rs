//! The protocol state machine of one client connection, free of any transport.
//!
//! A transport feeds it parsed frames; it answers through the session's outbound queue and
//! tells the transport when to close. Every protocol error becomes an ERROR frame with a
//! `message` header (STOMP 1.2 "ERROR"), after which the connection closes.

pub(crate) mod driver;
pub(crate) mod outbound;
pub(crate) mod sink;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tracing::{debug, warn};

use crate::advice::InboundContext;
use crate::broker::{AckMode, BrokerMessage, Subscription, pattern};
use crate::budget::{BudgetExhausted, Charge};
use crate::config::{negotiate_interval, parse_heartbeat};
use crate::events::SessionEvent;
use crate::frame::{Command, Frame, Version};
use crate::handler::{self, Dispatched, SessionInfo};
use crate::security::Principal;
use crate::server::ServerInner;
use crate::transport::ConnectionInfo;
use outbound::{CloseReason, Outbound};
use sink::{SessionShared, SubscriptionSink};

/// What the transport should do after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The session ended (DISCONNECT or a protocol error); flush and close.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingConnect,
    Open,
    Closed,
}

struct SubInfo {
    ack: AckMode,
    destination: String,
    /// What the subscription holds of the memory budget.
    _charge: Charge,
}

/// Where a SEND goes.
enum Route<'d> {
    /// To the application handler for this destination (without the prefix).
    App(&'d str),
    /// To every session of a user.
    User(String, Arc<BrokerMessage>),
    /// To the broker.
    Broker(Arc<BrokerMessage>),
}

/// An open transaction: its frames, awaiting COMMIT or ABORT.
struct Transaction {
    frames: Vec<Frame>,
    /// The frames' bytes ([`frame_size`]), also held of the memory budget.
    bytes: usize,
    charge: Charge,
}

/// Roughly the bytes a buffered frame holds.
fn frame_size(frame: &Frame) -> usize {
    let headers: usize = frame
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + 16)
        .sum();
    frame.body.len() + headers + crate::budget::ENTRY_OVERHEAD
}

fn budget_fault(e: BudgetExhausted) -> Fault {
    Fault::new("memory budget exhausted", e.to_string())
}

/// A protocol error: the ERROR frame's `message` header and body.
struct Fault {
    message: String,
    details: String,
    extra: Option<(&'static str, String)>,
    close: CloseReason,
}

impl Fault {
    fn new(message: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            details: details.into(),
            extra: None,
            close: CloseReason::Normal,
        }
    }
}

fn missing(header: &str, command: Command) -> Fault {
    Fault::new(
        format!("missing {header} header"),
        format!("{command} frames must carry the `{header}` header."),
    )
}

/// One client session.
pub(crate) struct Session {
    server: Arc<ServerInner>,
    shared: Arc<SessionShared>,
    state: State,
    version: Version,
    principal: Option<Principal>,
    subscriptions: HashMap<String, SubInfo>,
    transactions: HashMap<String, Transaction>,
    pending_tx_frames: usize,
    pending_tx_bytes: usize,
    /// Whether listeners heard of the connection (and so must hear of its end).
    announced: bool,
    connection: ConnectionInfo,
}

impl Session {
    pub(crate) fn new(
        server: Arc<ServerInner>,
        outbound: Outbound,
        connection: ConnectionInfo,
    ) -> Self {
        let id: Arc<str> = Arc::from(server.next_session_id());
        let shared = SessionShared::new(id, outbound);
        if let Some(list) = &server.outbound_interceptors {
            let _ = shared.interceptors.set(list.clone());
        }
        Self {
            shared,
            principal: connection.principal.clone(),
            server,
            state: State::AwaitingConnect,
            version: Version::V1_0,
            subscriptions: HashMap::new(),
            transactions: HashMap::new(),
            pending_tx_frames: 0,
            pending_tx_bytes: 0,
            announced: false,
            connection,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<SessionShared> {
        &self.shared
    }

    pub(crate) fn id(&self) -> &str {
        &self.shared.id
    }

    /// The version negotiated at CONNECT (1.0 before).
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Handles one frame from the peer.
    pub(crate) async fn handle(&mut self, mut frame: Frame) -> Flow {
        let receipt = frame.get("receipt").map(str::to_owned);
        if self.state == State::Closed {
            return Flow::Close;
        }
        if !self.server.interceptors.is_empty()
            && let Err(refusal) = self.intercept(&mut frame).await
        {
            let connecting = self.state == State::AwaitingConnect;
            if refusal.close || connecting {
                debug!(session = %self.shared.id, command = %frame.command, reason = %refusal.message, "frame refused");
                return self.fail(
                    Fault::new(refusal.message.into_owned(), refusal.details.into_owned()),
                    receipt.as_deref(),
                );
            }
            let destination = frame.get("destination").unwrap_or_default().to_owned();
            let outcome = handler::fail(
                &self.server,
                &self.shared,
                &destination,
                refusal.message.into_owned(),
                None,
            )
            .await;
            return match outcome {
                // As after a handler error: the error first, then the RECEIPT, so a client
                // waiting for it is not left hanging.
                Dispatched::Done => {
                    if let Some(id) = receipt {
                        self.receipt(&id);
                    }
                    Flow::Continue
                }
                Dispatched::Fatal(reason) => {
                    self.fail(Fault::new("frame refused", reason), receipt.as_deref())
                }
            };
        }
        let result = match self.state {
            State::Closed => return Flow::Close,
            State::AwaitingConnect => match frame.command {
                Command::Connect | Command::Stomp => self.connect(&frame).await,
                other => Err(Fault::new(
                    "frame before CONNECT",
                    format!("{other} was sent before the session was opened with CONNECT."),
                )),
            },
            State::Open => self.dispatch(frame).await,
        };
        match result {
            Ok(Flow::Close) => Flow::Close,
            Ok(Flow::Continue) => {
                if let Some(id) = receipt {
                    self.receipt(&id);
                }
                Flow::Continue
            }
            Err(fault) => self.fail(fault, receipt.as_deref()),
        }
    }

    /// Runs the channel interceptors, in order, on an inbound frame.
    async fn intercept(&mut self, frame: &mut Frame) -> Result<(), crate::advice::Refusal> {
        let server = self.server.clone();
        let mut ctx = InboundContext {
            session_id: &self.shared.id,
            principal: &mut self.principal,
            attributes: &self.shared.attributes,
            connection: &self.connection,
            version: self.version,
            connected: self.state == State::Open,
        };
        for interceptor in server.interceptors.iter() {
            interceptor.pre_receive(frame, &mut ctx).await?;
        }
        Ok(())
    }

    /// Sends an ERROR for a fault found outside any frame (a parse error, a silent peer).
    pub(crate) fn protocol_error(&mut self, message: &str, details: &str) -> Flow {
        self.fail(Fault::new(message, details), None)
    }

    /// Sends an ERROR answering `receipt` (when the faulty frame's head could be read) and
    /// closes for `close`.
    pub(crate) fn protocol_error_with(
        &mut self,
        message: &str,
        details: &str,
        receipt: Option<&str>,
        close: CloseReason,
    ) -> Flow {
        let fault = Fault {
            close,
            ..Fault::new(message, details)
        };
        self.fail(fault, receipt)
    }

    async fn dispatch(&mut self, frame: Frame) -> Result<Flow, Fault> {
        match frame.command {
            Command::Send => self.send(frame).await,
            Command::Subscribe => self.subscribe(&frame).await,
            Command::Unsubscribe => self.unsubscribe(&frame).await,
            Command::Ack | Command::Nack => self.ack(frame).await,
            Command::Begin => self.begin(&frame),
            Command::Commit => self.commit(&frame).await,
            Command::Abort => self.abort(&frame),
            Command::Disconnect => {
                if let Some(id) = frame.get("receipt") {
                    self.receipt(id);
                }
                self.state = State::Closed;
                self.shared.outbound.close();
                Ok(Flow::Close)
            }
            Command::Connect | Command::Stomp => Err(Fault::new(
                "already connected",
                "CONNECT was sent on a session that is already open.",
            )),
            other => Err(Fault::new(
                format!("unexpected command {other}"),
                format!("{other} is a server frame; clients may not send it."),
            )),
        }
    }

    async fn connect(&mut self, frame: &Frame) -> Result<Flow, Fault> {
        let version = match frame.get("accept-version") {
            None => Version::V1_0,
            Some(list) => list
                .split(',')
                .filter_map(Version::parse)
                .max()
                .ok_or_else(|| Fault {
                    extra: Some(("version", supported_versions())),
                    ..Fault::new(
                        "unsupported protocol version",
                        format!(
                            "Client accepts {list}; this server speaks {}.",
                            supported_versions()
                        ),
                    )
                })?,
        };
        self.version = version;
        let _ = self.shared.version.set(version);
        self.shared.outbound.set_version(version);

        if let Some(auth) = &self.server.authenticator {
            match auth.authenticate(&frame.headers).await {
                Ok(Some(p)) => self.principal = Some(p),
                Ok(None) => {}
                Err(e) => {
                    return Err(Fault::new("authentication failed", e.0));
                }
            }
        }

        let cfg = &self.server.config.heartbeat;
        let (sx, sy) = (cfg.send.as_millis() as u64, cfg.receive.as_millis() as u64);
        let (cx, cy) = if version == Version::V1_0 {
            (0, 0)
        } else {
            match frame.get("heart-beat") {
                None => (0, 0),
                Some(v) => parse_heartbeat(v).ok_or_else(|| {
                    Fault::new(
                        "invalid heart-beat header",
                        format!("`{v}` is not of the form `cx,cy` with two non-negative integers."),
                    )
                })?,
            }
        };
        let send_every = negotiate_interval(sx, cy);
        let expect_every = negotiate_interval(cx, sy);
        self.shared
            .heartbeat
            .send_replace((send_every, expect_every));

        let mut connected = Frame::new(Command::Connected)
            .header("version", version.as_str())
            .header("heart-beat", format!("{sx},{sy}"))
            .header("server", self.server.config.server_name.as_str())
            .header("session", &*self.shared.id);
        if let Some(p) = &self.principal {
            tracing::Span::current().record("user", p.name());
            connected = connected.header("user-name", p.name());
            self.server.users.add(p.name(), &self.shared.id);
            let _ = self.shared.principal.set(p.clone());
        }
        self.state = State::Open;
        debug!(session = %self.shared.id, %version, send_every, expect_every, "session opened");
        self.server
            .notify(SessionEvent::Connected {
                session: self.shared.id.clone(),
                principal: self.principal.clone(),
            })
            .await;
        self.announced = true;
        let _ = self.shared.outbound.push_frame(connected.encode(version));
        Ok(Flow::Continue)
    }

    async fn send(&mut self, frame: Frame) -> Result<Flow, Fault> {
        let Some(destination) = frame.get("destination").map(str::to_owned) else {
            return Err(missing("destination", Command::Send));
        };
        if let Some(tx) = frame.get("transaction") {
            self.buffer_in_transaction(tx.to_owned(), frame)?;
            return Ok(Flow::Continue);
        }
        self.publish(&destination, &frame).await?;
        Ok(Flow::Continue)
    }

    async fn publish(&mut self, destination: &str, frame: &Frame) -> Result<(), Fault> {
        match self.route(destination, frame)? {
            Route::App(lookup) => self.dispatch_app(lookup, frame, None).await,
            Route::User(user, message) => self
                .server
                .try_send_to_user(&user, message)
                .await
                .map_err(|e| Fault::new("message not accepted", e.to_string())),
            Route::Broker(message) => self
                .server
                .broker
                .publish(message)
                .await
                .map_err(|e| Fault::new("message not accepted", e.to_string())),
        }
    }

    /// Where a SEND to `destination` goes, decided without side effects.
    fn route<'d>(&self, destination: &'d str, frame: &Frame) -> Result<Route<'d>, Fault> {
        if let Some(lookup) = self.server.app_destination(destination) {
            return Ok(Route::App(lookup));
        }
        if self.server.is_user_destination(destination) {
            // A client addressing a user directly: /user/{name}/queue/x.
            let Some((user, dest)) = self.server.parse_user_target(destination) else {
                return Err(Fault::new(
                    "invalid user destination",
                    format!(
                        "`{destination}` must look like {}/{{user}}/queue/...",
                        self.server.config.user_prefix
                    ),
                ));
            };
            let message = BrokerMessage::from_send(frame, &dest);
            return Ok(Route::User(user, message));
        }
        self.refuse_foreign_user_destination(destination)?;
        if !self.server.broker.handles(destination) {
            return Err(Fault::new(
                "no route for destination",
                format!(
                    "Nothing handles `{destination}`: it matches no application handler and no broker prefix."
                ),
            ));
        }
        Ok(Route::Broker(BrokerMessage::from_send(frame, destination)))
    }

    fn refuse_foreign_user_destination(&self, destination: &str) -> Result<(), Fault> {
        if self
            .server
            .is_foreign_user_destination(destination, &self.shared.id)
        {
            return Err(Fault::new(
                "forbidden destination",
                format!(
                    "`{destination}` is another session's user destination; address users through {}/...",
                    self.server.config.user_prefix
                ),
            ));
        }
        Ok(())
    }

    /// Runs the application handler for `lookup` (the destination without the app prefix).
    async fn dispatch_app(
        &mut self,
        lookup: &str,
        frame: &Frame,
        subscription: Option<&str>,
    ) -> Result<(), Fault> {
        let info = SessionInfo {
            id: self.shared.id.clone(),
            principal: self.principal.clone(),
            attributes: self.shared.attributes.clone(),
        };
        match handler::dispatch(
            &self.server,
            &self.shared,
            info,
            lookup,
            frame,
            subscription,
        )
        .await
        {
            Dispatched::Done => Ok(()),
            Dispatched::Fatal(reason) => Err(Fault::new("handler failed", reason)),
        }
    }

    async fn subscribe(&mut self, frame: &Frame) -> Result<Flow, Fault> {
        let Some(destination) = frame.get("destination") else {
            return Err(missing("destination", Command::Subscribe));
        };
        let id = match (frame.get("id"), self.version) {
            (Some(id), _) => id.to_owned(),
            (None, Version::V1_0) => destination.to_owned(),
            (None, _) => return Err(missing("id", Command::Subscribe)),
        };
        if self.subscriptions.contains_key(&id) {
            return Err(Fault::new(
                "duplicate subscription id",
                format!("This session already has a subscription with id `{id}`."),
            ));
        }
        let max = self.server.config.limits.max_subscriptions;
        if self.subscriptions.len() >= max {
            return Err(Fault::new(
                "too many subscriptions",
                format!("A session may hold at most {max} subscriptions."),
            ));
        }
        let ack = match frame.get("ack") {
            None => AckMode::Auto,
            Some(v) => AckMode::parse(v).ok_or_else(|| {
                Fault::new(
                    "invalid ack mode",
                    format!("`{v}` is not one of auto, client, client-individual."),
                )
            })?,
        };
        let charge = self
            .server
            .budget
            .charge(2 * crate::budget::ENTRY_OVERHEAD + id.len() + destination.len())
            .map_err(budget_fault)?;
        if let Some(lookup) = self.server.app_destination(destination) {
            // Request-reply (`#[subscribe_mapping]`): answered once, no broker subscription.
            self.dispatch_app(lookup, frame, Some(&id)).await?;
            let destination = destination.to_owned();
            self.subscriptions.insert(
                id.clone(),
                SubInfo {
                    ack,
                    destination: destination.clone(),
                    _charge: charge,
                },
            );
            self.announce_subscription(true, destination, id).await;
            return Ok(Flow::Continue);
        }
        if self.server.is_user_destination(destination)
            && let Some(users) = self.server.broker.user_destinations()
        {
            // The broker routes user destinations itself, across servers.
            let window = self.prefetch_window(frame)?;
            let sink = Arc::new(SubscriptionSink::new(
                self.shared.clone(),
                &id,
                ack,
                window,
                self.server.budget.clone(),
            ));
            let unprefixed = &destination[self.server.config.user_prefix.len()..];
            users
                .subscribe_user(
                    self.principal.as_ref().map(|p| p.name()),
                    unprefixed,
                    Subscription {
                        session_id: self.shared.id.clone(),
                        id: id.clone(),
                        destination: destination.to_owned(),
                        ack,
                        sink,
                    },
                )
                .await
                .map_err(|e| Fault::new("subscription refused", e.to_string()))?;
            let destination = destination.to_owned();
            self.subscriptions.insert(
                id.clone(),
                SubInfo {
                    ack,
                    destination: destination.clone(),
                    _charge: charge,
                },
            );
            self.announce_subscription(true, destination, id).await;
            return Ok(Flow::Continue);
        }
        let broker_destination = if self.server.is_user_destination(destination) {
            self.server
                .resolve_user_subscription(destination, &self.shared.id)
        } else {
            destination.to_owned()
        };
        self.refuse_foreign_user_destination(destination)?;
        if !self.server.broker.handles(&broker_destination) {
            return Err(Fault::new(
                "no route for destination",
                format!("Cannot subscribe to `{destination}`: it is under no broker prefix."),
            ));
        }
        if pattern::is_pattern(&broker_destination) {
            let limits = &self.server.config.limits;
            let limits = pattern::Limits {
                max_segments: limits.max_pattern_segments,
                max_wildcards: limits.max_pattern_wildcards,
            };
            if let Err(e) = pattern::compile(&broker_destination, &limits) {
                return Err(Fault::new("invalid destination pattern", e.to_string()));
            }
        }
        let window = self.prefetch_window(frame)?;
        let sink = Arc::new(SubscriptionSink::new(
            self.shared.clone(),
            &id,
            ack,
            window,
            self.server.budget.clone(),
        ));
        self.server
            .broker
            .subscribe(Subscription {
                session_id: self.shared.id.clone(),
                id: id.clone(),
                destination: broker_destination.clone(),
                ack,
                sink,
            })
            .await
            .map_err(|e| Fault::new("subscription refused", e.to_string()))?;
        let destination = destination.to_owned();
        self.subscriptions.insert(
            id.clone(),
            SubInfo {
                ack,
                destination: destination.clone(),
                _charge: charge,
            },
        );
        self.announce_subscription(true, destination, id).await;
        Ok(Flow::Continue)
    }

    /// The subscription's prefetch window: RabbitMQ's `prefetch-count` header, at most
    /// [`Limits::max_unacked`](crate::config::Limits::max_unacked) (0 or no header: the limit).
    fn prefetch_window(&self, frame: &Frame) -> Result<usize, Fault> {
        let max = self.server.config.limits.max_unacked;
        match frame.get("prefetch-count") {
            None => Ok(max),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(0) => Ok(max),
                Ok(n) => Ok(n.min(max)),
                Err(_) => Err(Fault::new(
                    "invalid prefetch-count header",
                    format!("`{v}` is not a non-negative integer."),
                )),
            },
        }
    }

    async fn announce_subscription(&self, subscribed: bool, destination: String, id: String) {
        if self.server.listeners.is_empty() {
            return;
        }
        let (session, principal) = (self.shared.id.clone(), self.principal.clone());
        let event = if subscribed {
            SessionEvent::Subscribed {
                session,
                principal,
                destination,
                subscription: id,
            }
        } else {
            SessionEvent::Unsubscribed {
                session,
                principal,
                destination,
                subscription: id,
            }
        };
        self.server.notify(event).await;
    }

    async fn unsubscribe(&mut self, frame: &Frame) -> Result<Flow, Fault> {
        let id = match (frame.get("id"), frame.get("destination"), self.version) {
            (Some(id), _, _) => id.to_owned(),
            (None, Some(dest), Version::V1_0) => dest.to_owned(),
            _ => return Err(missing("id", Command::Unsubscribe)),
        };
        if let Some(sub) = self.subscriptions.remove(&id) {
            self.server.broker.unsubscribe(&self.shared.id, &id).await;
            // Messages of this subscription still unacked go back to their queue.
            let orphaned = self.take_pending(|p| *p.subscription == *id);
            if !orphaned.is_empty() {
                self.server.broker.requeue(&self.shared.id, orphaned).await;
            }
            self.announce_subscription(false, sub.destination, id).await;
        }
        Ok(Flow::Continue)
    }

    async fn ack(&mut self, frame: Frame) -> Result<Flow, Fault> {
        let command = frame.command;
        if command == Command::Nack && self.version == Version::V1_0 {
            return Err(Fault::new(
                "NACK requires STOMP 1.1",
                "This session negotiated STOMP 1.0, which has no NACK.",
            ));
        }
        if let Some(tx) = frame.get("transaction") {
            self.buffer_in_transaction(tx.to_owned(), frame)?;
            return Ok(Flow::Continue);
        }
        let settled = self.settle(&frame)?;
        if command == Command::Ack {
            self.server.broker.ack(&self.shared.id, settled).await;
        } else {
            self.server.broker.requeue(&self.shared.id, settled).await;
        }
        Ok(Flow::Continue)
    }

    /// Removes the messages an ACK/NACK settles: in `client` mode the named one and every
    /// earlier one of its subscription, in `client-individual` mode only the named one.
    fn settle(&self, frame: &Frame) -> Result<Vec<Arc<BrokerMessage>>, Fault> {
        let position = self.locate_pending(frame)?;
        let mut pending = self.shared.pending.lock();
        let sub = pending[position].subscription.clone();
        let cumulative = self
            .subscriptions
            .get(&*sub)
            .is_some_and(|s| s.ack == AckMode::Client);
        let mut settled = Vec::new();
        let mut index = 0;
        pending.retain(|p| {
            let hit = if cumulative {
                index <= position && p.subscription == sub
            } else {
                index == position
            };
            index += 1;
            if hit {
                settled.push(p.message.clone());
            }
            !hit
        });
        Ok(settled)
    }

    /// Where the message an ACK or NACK names waits among the unacknowledged ones.
    fn locate_pending(&self, frame: &Frame) -> Result<usize, Fault> {
        let command = frame.command;
        let pending = self.shared.pending.lock();
        let position = if self.version == Version::V1_2 {
            let Some(id) = frame.get("id") else {
                return Err(missing("id", command));
            };
            let ack_id: Option<u64> = id.parse().ok();
            pending.iter().position(|p| Some(p.ack_id) == ack_id)
        } else {
            let Some(mid) = frame.get("message-id") else {
                return Err(missing("message-id", command));
            };
            let sub = frame.get("subscription");
            if self.version == Version::V1_1 && sub.is_none() {
                return Err(missing("subscription", command));
            }
            pending.iter().position(|p| {
                p.message.message_id == mid && sub.is_none_or(|s| *p.subscription == *s)
            })
        };
        let Some(position) = position else {
            let named = frame
                .get("id")
                .or(frame.get("message-id"))
                .unwrap_or_default();
            return Err(Fault::new(
                format!("unknown message in {command}"),
                format!("No message awaiting acknowledgement matches `{named}` in this session."),
            ));
        };
        Ok(position)
    }

    fn take_pending(&self, pred: impl Fn(&sink::Pending) -> bool) -> Vec<Arc<BrokerMessage>> {
        let mut pending = self.shared.pending.lock();
        let mut out = Vec::new();
        pending.retain(|p| {
            if pred(p) {
                out.push(p.message.clone());
                false
            } else {
                true
            }
        });
        out
    }

    fn begin(&mut self, frame: &Frame) -> Result<Flow, Fault> {
        let Some(tx) = frame.get("transaction") else {
            return Err(missing("transaction", Command::Begin));
        };
        if self.transactions.contains_key(tx) {
            return Err(Fault::new(
                "duplicate transaction",
                format!("Transaction `{tx}` is already open."),
            ));
        }
        let max = self.server.config.limits.max_transactions;
        if self.transactions.len() >= max {
            return Err(Fault::new(
                "too many transactions",
                format!("A session may have at most {max} transactions open at once."),
            ));
        }
        let charge = self
            .server
            .budget
            .charge(crate::budget::ENTRY_OVERHEAD + tx.len())
            .map_err(budget_fault)?;
        self.transactions.insert(
            tx.to_owned(),
            Transaction {
                frames: Vec::new(),
                bytes: 0,
                charge,
            },
        );
        Ok(Flow::Continue)
    }

    fn end_transaction(&mut self, frame: &Frame) -> Result<Vec<Frame>, Fault> {
        let Some(tx) = frame.get("transaction") else {
            return Err(missing("transaction", frame.command));
        };
        let transaction = self.transactions.remove(tx).ok_or_else(|| {
            Fault::new(
                "unknown transaction",
                format!(
                    "{} names transaction `{tx}`, which is not open.",
                    frame.command
                ),
            )
        })?;
        self.pending_tx_frames -= transaction.frames.len();
        self.pending_tx_bytes -= transaction.bytes;
        Ok(transaction.frames)
    }

    /// Commits a transaction all or nothing: every SEND is routed and every ACK/NACK
    /// checked first, then the broker publishes all the messages or none of them (the ERROR
    /// says none was, the RECEIPT that all were); then, in order, the SENDs to application
    /// handlers run and the ACKs and NACKs settle.
    async fn commit(&mut self, frame: &Frame) -> Result<Flow, Fault> {
        let frames = self.end_transaction(frame)?;
        let not_committed = |reason: String| {
            Fault::new(
                "transaction not committed",
                format!("None of the transaction's messages was published: {reason}"),
            )
        };
        let mut publish = Vec::new();
        let mut users = Vec::new();
        let mut then: Vec<(Option<String>, Frame)> = Vec::new();
        for mut f in frames {
            f.headers.remove("transaction");
            f.headers.remove("receipt");
            if f.command == Command::Send {
                let dest = f.get("destination").unwrap_or_default().to_owned();
                match self.route(&dest, &f) {
                    Ok(Route::App(lookup)) => then.push((Some(lookup.to_owned()), f)),
                    // A broker routing users itself (a relay) takes them one by one,
                    // after the batch; otherwise they join it, one per session.
                    Ok(Route::User(user, message)) => {
                        if self.server.broker.user_destinations().is_some() {
                            users.push((user, message));
                        } else {
                            publish.extend(self.server.user_messages(&user, &message));
                        }
                    }
                    Ok(Route::Broker(message)) => publish.push(message),
                    Err(fault) => return Err(not_committed(fault.details)),
                }
            } else {
                self.locate_pending(&f)
                    .map_err(|f| not_committed(f.details))?;
                then.push((None, f));
            }
        }
        if !publish.is_empty() {
            self.server
                .broker
                .publish_all(publish)
                .await
                .map_err(|e| not_committed(e.to_string()))?;
        }
        for (user, message) in users {
            self.server
                .try_send_to_user(&user, message)
                .await
                .map_err(|e| Fault::new("message not accepted", e.to_string()))?;
        }
        for (lookup, f) in then {
            match lookup {
                Some(lookup) => self.dispatch_app(&lookup, &f, None).await?,
                None => {
                    self.ack(f).await?;
                }
            }
        }
        Ok(Flow::Continue)
    }

    fn abort(&mut self, frame: &Frame) -> Result<Flow, Fault> {
        self.end_transaction(frame)?;
        Ok(Flow::Continue)
    }

    fn buffer_in_transaction(&mut self, tx: String, frame: Frame) -> Result<(), Fault> {
        let max = self.server.config.limits.max_pending_frames;
        if self.pending_tx_frames >= max {
            return Err(Fault::new(
                "transaction too large",
                format!("A session may hold at most {max} frames in open transactions."),
            ));
        }
        let size = frame_size(&frame);
        let max_bytes = self.server.config.limits.max_pending_bytes;
        if self.pending_tx_bytes.saturating_add(size) > max_bytes {
            return Err(Fault::new(
                "transaction too large",
                format!("A session may hold at most {max_bytes} bytes in open transactions."),
            ));
        }
        let Some(transaction) = self.transactions.get_mut(&tx) else {
            return Err(Fault::new(
                "unknown transaction",
                format!(
                    "{} names transaction `{tx}`, which is not open.",
                    frame.command
                ),
            ));
        };
        transaction.charge.grow(size).map_err(budget_fault)?;
        // Held until COMMIT: copied out of the read buffer, so that it pins only itself.
        transaction.frames.push(frame.detached());
        transaction.bytes += size;
        self.pending_tx_frames += 1;
        self.pending_tx_bytes += size;
        Ok(())
    }

    fn receipt(&self, id: &str) {
        let frame = Frame::new(Command::Receipt).header("receipt-id", id);
        let _ = self.shared.outbound.push_frame(frame.encode(self.version));
    }

    fn fail(&mut self, fault: Fault, receipt: Option<&str>) -> Flow {
        warn!(
            session = %self.shared.id,
            message = %fault.message,
            details = %fault.details,
            "protocol error"
        );
        let mut frame = Frame::new(Command::Error).header("message", fault.message);
        if let Some(r) = receipt {
            frame = frame.header("receipt-id", r);
        }
        if let Some((k, v)) = fault.extra {
            frame = frame.header(k, v);
        }
        if !fault.details.is_empty() {
            frame = frame.header("content-type", "text/plain");
            frame.body = Bytes::from(fault.details);
        }
        let _ = self.shared.outbound.push_frame(frame.encode(self.version));
        self.shared.outbound.close_with(fault.close);
        self.state = State::Closed;
        Flow::Close
    }

    /// Releases everything the session holds: open transactions are aborted, subscriptions
    /// removed, and unacknowledged queue messages go to other subscribers.
    pub(crate) async fn cleanup(&mut self) {
        self.state = State::Closed;
        self.transactions.clear();
        self.subscriptions.clear();
        self.server.broker.session_closed(&self.shared.id).await;
        let unacked = self.take_pending(|_| true);
        if !unacked.is_empty() {
            self.server.broker.requeue(&self.shared.id, unacked).await;
        }
        if let Some(p) = &self.principal {
            self.server.users.remove(p.name(), &self.shared.id);
        }
        if self.announced {
            self.server
                .notify(SessionEvent::Disconnected {
                    session: self.shared.id.clone(),
                    principal: self.principal.clone(),
                })
                .await;
        }
        debug!(session = %self.shared.id, "session closed");
    }
}

fn supported_versions() -> String {
    Version::ALL.map(Version::as_str).join(",")
}
