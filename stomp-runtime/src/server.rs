//! The server: configuration, the builder, and what every session shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::admission::Admission;
use crate::advice::{AdviceDef, AdviceRegistry, ChannelInterceptor, ExceptionHandlerDef};
use crate::broker::{Broker, BrokerError, BrokerMessage, RelayBroker, RelayConfig, SimpleBroker};
use crate::budget::MemoryBudget;
use crate::config::{HeartBeat, Limits, SlowConsumerPolicy};
use crate::events::{SessionEvent, SessionListenerDef};
use crate::handler::{ErrorPolicy, HandlerDef, RegistryError, Router, StateMap};
use crate::security::Authenticator;
use crate::template::MessagingTemplate;

/// Everything a [`StompServer`] is configured with.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Limits on what a peer may send and queue.
    pub limits: Limits,
    /// Heart-beat intervals offered at CONNECT.
    pub heartbeat: HeartBeat,
    /// What happens to a consumer that falls behind.
    pub slow_consumer: SlowConsumerPolicy,
    /// Destination prefixes routed to application handlers (default `/app`).
    pub app_prefixes: Vec<String>,
    /// Prefix of user destinations (default `/user`).
    pub user_prefix: String,
    /// The CONNECTED `server` header.
    pub server_name: String,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
    /// Where a handler's return value goes without `#[send_to]`/`#[send_to_user]`: this
    /// prefix plus the destination without the application prefix (default `/topic`, as in
    /// Spring).
    pub default_reply_prefix: String,
    /// How handler failures reach the client.
    pub error_policy: ErrorPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            heartbeat: HeartBeat::default(),
            slow_consumer: SlowConsumerPolicy::default(),
            app_prefixes: vec!["/app".into()],
            user_prefix: "/user".into(),
            server_name: concat!("stomp-rs/", env!("CARGO_PKG_VERSION")).into(),
            connect_timeout: Duration::from_secs(10),
            default_reply_prefix: "/topic".into(),
            error_policy: ErrorPolicy::default(),
        }
    }
}

/// Which sessions each user has open.
#[derive(Default)]
pub(crate) struct UserRegistry {
    sessions: RwLock<HashMap<String, Vec<Arc<str>>>>,
}

impl UserRegistry {
    pub(crate) fn add(&self, user: &str, session: &Arc<str>) {
        self.sessions
            .write()
            .entry(user.to_owned())
            .or_default()
            .push(session.clone());
    }

    pub(crate) fn remove(&self, user: &str, session: &str) {
        let mut map = self.sessions.write();
        if let Some(list) = map.get_mut(user) {
            list.retain(|s| &**s != session);
            if list.is_empty() {
                map.remove(user);
            }
        }
    }

    pub(crate) fn sessions_of(&self, user: &str) -> Vec<Arc<str>> {
        self.sessions.read().get(user).cloned().unwrap_or_default()
    }
}

/// State shared by every session of one server.
pub(crate) struct ServerInner {
    pub(crate) config: ServerConfig,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
    pub(crate) users: UserRegistry,
    pub(crate) router: Router,
    pub(crate) listeners: Vec<crate::events::Listener>,
    pub(crate) state: StateMap,
    /// Channel interceptors, in registration order.
    pub(crate) interceptors: Arc<[Arc<dyn ChannelInterceptor>]>,
    /// Those of them that see outbound MESSAGEs; `None` when none does.
    pub(crate) outbound_interceptors: Option<Arc<[Arc<dyn ChannelInterceptor>]>>,
    pub(crate) lifecycle: crate::lifecycle::Lifecycle,
    /// The relay behind `broker`, when the builder set one up.
    pub(crate) relay: Option<RelayBroker>,
    next_session: AtomicU64,
    node: u32,
    /// Who may connect.
    pub(crate) admission: Admission,
    /// What all clients together may make the server hold.
    pub(crate) budget: MemoryBudget,
}

impl ServerInner {
    /// A session id: a counter and 64 unpredictable bits, so that nobody can guess
    /// another session's private user destinations (`/queue/x-user{id}`).
    pub(crate) fn next_session_id(&self) -> String {
        use std::hash::{BuildHasher, Hasher};
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        // `RandomState` is keyed from the OS's randomness once per process.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u32(self.node);
        format!("{n:x}-{:016x}", h.finish())
    }

    /// Whether `destination` is another session's resolved user destination
    /// (`/queue/x-user{id}` with an id not `own`): those are reached only through
    /// `/user/...`.
    pub(crate) fn is_foreign_user_destination(&self, destination: &str, own: &str) -> bool {
        let Some((_, id)) = destination.rsplit_once("-user") else {
            return false;
        };
        let looks_like_id = id.split_once('-').is_some_and(|(n, r)| {
            !n.is_empty()
                && r.len() == 16
                && n.bytes().chain(r.bytes()).all(|b| b.is_ascii_hexdigit())
        });
        looks_like_id && id != own
    }

    /// The destination without the application prefix, if it has one.
    pub(crate) fn app_destination<'a>(&self, destination: &'a str) -> Option<&'a str> {
        self.config
            .app_prefixes
            .iter()
            .find_map(|p| destination.strip_prefix(p.as_str()))
            .filter(|rest| rest.is_empty() || rest.starts_with(['/', '.']))
    }

    /// Whether `destination` is a user destination (`/user/...`).
    pub(crate) fn is_user_destination(&self, destination: &str) -> bool {
        destination
            .strip_prefix(self.config.user_prefix.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// `/user/{name}/queue/x` → (`name`, `/queue/x`).
    pub(crate) fn parse_user_target(&self, destination: &str) -> Option<(String, String)> {
        let rest = destination
            .strip_prefix(self.config.user_prefix.as_str())?
            .strip_prefix('/')?;
        let (user, dest) = rest.split_once('/')?;
        (!user.is_empty() && !dest.is_empty()).then(|| (user.to_owned(), format!("/{dest}")))
    }

    /// `/user/queue/x` subscribed by session `s` → `/queue/x-user{s}`, as Spring does, so
    /// user messages ride the ordinary broker.
    pub(crate) fn resolve_user_subscription(&self, destination: &str, session: &str) -> String {
        let dest = destination
            .strip_prefix(self.config.user_prefix.as_str())
            .unwrap_or(destination);
        format!("{dest}-user{session}")
    }

    /// Publishes `message` (addressed to a plain destination such as `/queue/x`) to every
    /// session of `user`.
    pub(crate) async fn send_to_user(&self, user: &str, message: Arc<BrokerMessage>) {
        if let Err(e) = self.try_send_to_user(user, message).await {
            tracing::warn!(%user, error = %e, "message to user not published");
        }
    }

    /// Like [`send_to_user`](Self::send_to_user), saying whether the broker took it. A
    /// broker with its own user routing (a relay) reaches the user's sessions on every
    /// server; otherwise they are found in this server's registry.
    pub(crate) async fn try_send_to_user(
        &self,
        user: &str,
        message: Arc<BrokerMessage>,
    ) -> Result<(), BrokerError> {
        if let Some(users) = self.broker.user_destinations() {
            return users.publish_to_user(user, &message).await;
        }
        for message in self.user_messages(user, &message) {
            let _ = self.broker.publish(message).await;
        }
        Ok(())
    }

    /// `message` (addressed to a plain destination such as `/queue/x`) once for each session
    /// of `user`, at that session's user destination.
    pub(crate) fn user_messages(
        &self,
        user: &str,
        message: &BrokerMessage,
    ) -> Vec<Arc<BrokerMessage>> {
        self.users
            .sessions_of(user)
            .iter()
            .map(|session| message.redirect(format!("{}-user{session}", message.destination)))
            .collect()
    }

    /// Tells every lifecycle listener.
    pub(crate) async fn notify(self: &Arc<Self>, event: SessionEvent) {
        for listener in &self.listeners {
            listener(event.clone(), MessagingTemplate::new(self.clone())).await;
        }
    }

    /// Publishes `message` to one session's user destination.
    pub(crate) async fn send_to_session(&self, session: &str, message: &BrokerMessage) {
        if let Some(users) = self.broker.user_destinations() {
            let _ = users.publish_to_session(session, message).await;
            return;
        }
        let dest = format!("{}-user{session}", message.destination);
        let _ = self.broker.publish(message.redirect(dest)).await;
    }
}

/// A configured STOMP server: mount it on actix-web, serve TCP, or both.
///
/// Cloning is cheap; clones share sessions, broker and handlers.
#[derive(Clone)]
pub struct StompServer {
    pub(crate) inner: Arc<ServerInner>,
}

impl StompServer {
    /// Starts configuring a server.
    pub fn builder() -> StompServerBuilder {
        StompServerBuilder::default()
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The broker behind `/topic` and `/queue`.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.inner.broker
    }

    /// The relay to an external broker, when the server was built with
    /// [`relay`](StompServerBuilder::relay): its availability and health.
    pub fn relay(&self) -> Option<&RelayBroker> {
        self.inner.relay.as_ref()
    }

    /// A template for sending to destinations and users from anywhere.
    pub fn template(&self) -> MessagingTemplate {
        MessagingTemplate::new(self.inner.clone())
    }

    /// What clients hold of the server right now.
    pub fn usage(&self) -> Usage {
        Usage {
            connections: self.inner.lifecycle.len(),
            memory_used: self.inner.budget.used(),
            memory_budget: self.inner.budget.max(),
        }
    }

    /// The budget client-created state is charged to.
    pub fn memory_budget(&self) -> &MemoryBudget {
        &self.inner.budget
    }
}

/// A snapshot of what clients hold of a server (see [`StompServer::usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Usage {
    /// Connections being served, on every transport, until their session is released.
    pub connections: usize,
    /// Bytes of client-created state charged to the memory budget.
    pub memory_used: usize,
    /// The memory budget ([`Limits::memory_budget`]).
    pub memory_budget: usize,
}

/// Errors found while building a server.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The handler registry is inconsistent (duplicate or malformed patterns).
    #[error(transparent)]
    Handlers(#[from] RegistryError),
}

/// Configures a [`StompServer`].
///
/// ```
/// use stomp_runtime::StompServer;
///
/// let server = StompServer::builder()
///     .app_prefix("/app")
///     .simple_broker(["/topic", "/queue"])
///     .heartbeat(10_000, 10_000)
///     .build()
///     .unwrap();
/// assert_eq!(server.config().app_prefixes, ["/app"]);
/// ```
#[derive(Default)]
pub struct StompServerBuilder {
    config: ServerConfig,
    broker: Option<Arc<dyn Broker>>,
    simple: Option<Vec<String>>,
    relay: Option<RelayConfig>,
    authenticator: Option<Arc<dyn Authenticator>>,
    handlers: Vec<&'static HandlerDef>,
    skip_discovery: bool,
    state: StateMap,
    listeners: Vec<crate::events::Listener>,
    advice: Vec<&'static AdviceDef>,
    exception_handlers: Vec<&'static ExceptionHandlerDef>,
    interceptors: Vec<Arc<dyn ChannelInterceptor>>,
    budget: Option<MemoryBudget>,
}

impl StompServerBuilder {
    /// Uses `budget` for client-created state instead of one of
    /// [`Limits::memory_budget`] bytes: to share it with a broker built beforehand
    /// ([`SimpleBroker::memory_budget`]), so that queue backlogs count too.
    pub fn memory_budget(mut self, budget: MemoryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Registers a handler explicitly (for crates nothing else links, and for tests):
    /// `.handler(&my_handler::HANDLER)`, where `my_handler` is a function annotated with
    /// `#[message_mapping]` or `#[subscribe_mapping]`.
    pub fn handler(mut self, def: &'static HandlerDef) -> Self {
        self.handlers.push(def);
        self
    }

    /// Uses only handlers, advice, exception handlers and session listeners given to this
    /// builder, not those registered at link time.
    pub fn without_discovery(mut self) -> Self {
        self.skip_discovery = true;
        self
    }

    /// Registers an advice explicitly: `.advice(my_advice::ADVICE)`, where `my_advice` is a
    /// function annotated with `#[around]`, `#[before]`, `#[after_returning]` or
    /// `#[after_error]`.
    pub fn advice(mut self, def: &'static AdviceDef) -> Self {
        self.advice.push(def);
        self
    }

    /// Registers a `#[message_exception_handler]` explicitly:
    /// `.exception_handler(my_handler::EXCEPTION_HANDLER)`.
    pub fn exception_handler(mut self, def: &'static ExceptionHandlerDef) -> Self {
        self.exception_handlers.push(def);
        self
    }

    /// Adds a channel interceptor; interceptors run in the order they are added, on every
    /// inbound frame (CONNECT included) and, if they ask, on every outbound MESSAGE.
    pub fn channel_interceptor(mut self, interceptor: impl ChannelInterceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Calls `listener` when a session connects and when it ends, with a template to
    /// announce it (presence lists, audit logs).
    ///
    /// ```
    /// use stomp_runtime::{SessionEvent, StompServer};
    ///
    /// let server = StompServer::builder()
    ///     .on_session_event(|event, template| async move {
    ///         if let SessionEvent::Disconnected { principal: Some(user), .. } = &event {
    ///             let _ = template.convert_and_send("/topic/presence", &format!("{} left", user.name())).await;
    ///         }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn on_session_event<F, Fut>(mut self, listener: F) -> Self
    where
        F: Fn(SessionEvent, MessagingTemplate) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.listeners.push(Arc::new(move |event, template| {
            Box::pin(listener(event, template))
        }));
        self
    }

    /// Registers application state, taken by handlers as `State<T>`.
    pub fn state<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// How handler failures reach the client (default: a message on `/user/queue/errors`).
    pub fn error_policy(mut self, policy: ErrorPolicy) -> Self {
        self.config.error_policy = policy;
        self
    }

    /// Where return values go without `#[send_to]` (default `/topic`).
    pub fn default_reply_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.default_reply_prefix = prefix.into();
        self
    }

    /// Sets the prefix of destinations handled by application handlers (default `/app`).
    pub fn app_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.app_prefixes = vec![prefix.into()];
        self
    }

    /// Uses the in-memory broker for these prefixes. Prefixes starting with `/queue` get
    /// competing consumers; the others broadcast.
    pub fn simple_broker<I>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.simple = Some(prefixes.into_iter().map(Into::into).collect());
        self
    }

    /// Relays broker destinations to RabbitMQ's STOMP adapter, so that several servers
    /// share subscribers, queues and user destinations (see [`crate::broker::relay`]).
    /// The relay starts connecting when the server is built.
    pub fn relay(mut self, config: RelayConfig) -> Self {
        self.relay = Some(config);
        self
    }

    /// Uses `broker` (for example a relay to an external broker).
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Sets the prefix of user destinations (default `/user`).
    pub fn user_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.user_prefix = prefix.into();
        self
    }

    /// Heart-beat intervals in milliseconds: how often the server can send, how often it
    /// wants to hear from the client. Zero disables a direction.
    pub fn heartbeat(mut self, send_ms: u64, receive_ms: u64) -> Self {
        self.config.heartbeat.send = Duration::from_millis(send_ms);
        self.config.heartbeat.receive = Duration::from_millis(receive_ms);
        self
    }

    /// Sets every limit at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Sets the slow-consumer policy.
    pub fn slow_consumer(mut self, policy: SlowConsumerPolicy) -> Self {
        self.config.slow_consumer = policy;
        self
    }

    /// How long a connection may stay silent before sending CONNECT.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Decides who connects, from the CONNECT headers.
    pub fn authenticator(mut self, auth: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(auth));
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the server.
    pub fn build(self) -> Result<StompServer, BuildError> {
        let c = &self.config;
        if c.limits.max_frame_size < 64 {
            return Err(BuildError::Invalid(
                "max_frame_size must be at least 64 bytes".into(),
            ));
        }
        if c.heartbeat.grace < 1.0 {
            return Err(BuildError::Invalid(
                "heart-beat grace must be at least 1.0".into(),
            ));
        }
        let limits = &self.config.limits;
        let budget = self
            .budget
            .unwrap_or_else(|| MemoryBudget::new(limits.memory_budget));
        let admission = Admission::new(limits);
        if self.broker.is_some() && self.relay.is_some() {
            return Err(BuildError::Invalid(
                "choose one of broker() and relay(), not both".into(),
            ));
        }
        let relay = self
            .relay
            .map(RelayBroker::new)
            .transpose()
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        let broker: Arc<dyn Broker> = match (self.broker, &relay, self.simple) {
            (Some(b), _, _) => b,
            (None, Some(relay), _) => Arc::new(relay.clone()),
            (None, None, prefixes) => {
                let prefixes =
                    prefixes.unwrap_or_else(|| vec!["/topic".to_owned(), "/queue".to_owned()]);
                let (queues, topics): (Vec<String>, Vec<String>) =
                    prefixes.into_iter().partition(|p| p.starts_with("/queue"));
                Arc::new(
                    SimpleBroker::new(topics, queues)
                        .max_backlog(limits.max_queue_backlog)
                        .max_queues(limits.max_queues)
                        .max_backlog_bytes(limits.max_backlog_bytes)
                        .memory_budget(budget.clone()),
                )
            }
        };
        let node = std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0));
        let mut defs = self.handlers;
        let mut advice = self.advice;
        let mut exception = self.exception_handlers;
        let mut listeners = self.listeners;
        if !self.skip_discovery {
            defs.extend(inventory::iter::<HandlerDef>());
            advice.extend(inventory::iter::<AdviceDef>());
            exception.extend(inventory::iter::<ExceptionHandlerDef>());
            let mut found: Vec<&'static SessionListenerDef> =
                inventory::iter::<SessionListenerDef>().collect();
            // Deterministic order, whatever the link order.
            found.sort_by_key(|l| (l.name, l.file, l.line));
            for l in found {
                let call = l.call;
                listeners.push(Arc::new(call));
            }
        }
        let router = Router::with_advice(defs, &AdviceRegistry::new(advice, exception))?;
        let outbound: Vec<_> = self
            .interceptors
            .iter()
            .filter(|i| i.intercepts_outbound())
            .cloned()
            .collect();
        Ok(StompServer {
            inner: Arc::new(ServerInner {
                config: self.config,
                broker,
                authenticator: self.authenticator,
                users: UserRegistry::default(),
                router,
                listeners,
                state: self.state,
                interceptors: self.interceptors.into(),
                outbound_interceptors: (!outbound.is_empty()).then(|| outbound.into()),
                lifecycle: Default::default(),
                relay,
                next_session: AtomicU64::new(1),
                node,
                admission,
                budget,
            }),
        })
    }
}
