//! One SockJS session: the messages waiting for a receiving request, the messages waiting
//! for the handler, which request currently receives, and whether the session is closed.
//!
//! A session outlives the HTTP requests that carry it: polling clients attach a receiving
//! request, take what is queued, and come back. Everything queued is bounded in bytes.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

/// How a session ended: the close frame every later receiving request gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CloseReason {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

impl CloseReason {
    pub(crate) fn new(code: u16, reason: &str) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
        }
    }

    /// Closed by the server, as the protocol's examples say it.
    pub(crate) fn go_away() -> Self {
        Self::new(3000, "Go away!")
    }

    /// The receiving request was cut while the session was open.
    pub(crate) fn interrupted() -> Self {
        Self::new(1002, "Connection interrupted")
    }
}

/// The session is closed: nothing more can be sent or received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the SockJS session is closed")]
pub struct SessionClosed;

/// What a new receiving request found.
pub(crate) enum Attach {
    /// It receives; `open` says whether it must send the open frame first.
    Receiving { token: u64, open: bool },
    /// Another request receives already.
    Busy,
}

#[derive(Debug)]
struct State {
    closed: Option<CloseReason>,
    opened: bool,
    out: VecDeque<String>,
    out_bytes: usize,
    inbox: VecDeque<String>,
    in_bytes: usize,
    receiver: Option<u64>,
    next_token: u64,
    detached_at: Instant,
}

/// One session, shared by its handler task and the requests that carry it.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: Arc<str>,
    max_out: usize,
    max_in: usize,
    state: Mutex<State>,
    /// Messages queued for the receiver, or the session closed.
    out_ready: Notify,
    /// Room freed in the outgoing queue.
    out_room: Notify,
    /// Messages queued for the handler, or the session closed.
    in_ready: Notify,
    /// Room freed in the incoming queue.
    in_room: Notify,
    /// A receiver attached or detached, or the session closed.
    changed: Notify,
}

impl Session {
    pub(crate) fn new(id: Arc<str>, max_out: usize, max_in: usize) -> Arc<Self> {
        Arc::new(Self {
            id,
            max_out,
            max_in,
            state: Mutex::new(State {
                closed: None,
                opened: false,
                out: VecDeque::new(),
                out_bytes: 0,
                inbox: VecDeque::new(),
                in_bytes: 0,
                receiver: None,
                next_token: 1,
                detached_at: Instant::now(),
            }),
            out_ready: Notify::new(),
            out_room: Notify::new(),
            in_ready: Notify::new(),
            in_room: Notify::new(),
            changed: Notify::new(),
        })
    }

    fn wake_all(&self) {
        self.out_ready.notify_waiters();
        self.out_room.notify_waiters();
        self.in_ready.notify_waiters();
        self.in_room.notify_waiters();
        self.changed.notify_waiters();
    }

    /// Closes the session (the first reason wins).
    pub(crate) fn close(&self, reason: CloseReason) {
        let mut s = self.state.lock();
        if s.closed.is_none() {
            s.closed = Some(reason);
            drop(s);
            self.wake_all();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed.is_some()
    }

    /// Queues a message for the client, waiting while the queue is full. One message larger
    /// than the bound still goes through an empty queue.
    pub(crate) async fn send(&self, message: String) -> Result<(), SessionClosed> {
        loop {
            let room = self.out_room.notified();
            {
                let mut s = self.state.lock();
                if s.closed.is_some() {
                    return Err(SessionClosed);
                }
                if s.out_bytes == 0 || s.out_bytes + message.len() <= self.max_out {
                    s.out_bytes += message.len();
                    s.out.push_back(message);
                    drop(s);
                    self.out_ready.notify_waiters();
                    return Ok(());
                }
            }
            room.await;
        }
    }

    /// The next message from the client; `None` once the session is closed and every
    /// message that arrived before has been taken. Cancel safe.
    pub(crate) async fn recv(&self) -> Option<String> {
        loop {
            let ready = self.in_ready.notified();
            {
                let mut s = self.state.lock();
                if let Some(m) = s.inbox.pop_front() {
                    s.in_bytes -= m.len();
                    drop(s);
                    self.in_room.notify_waiters();
                    return Some(m);
                }
                if s.closed.is_some() {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// Queues messages from the client for the handler, all or none: `Ok(true)` when queued,
    /// `Ok(false)` when there is no room yet (wait with [`Session::in_room`] and retry).
    pub(crate) fn try_deliver(&self, messages: &mut Vec<String>) -> Result<bool, SessionClosed> {
        let len: usize = messages.iter().map(String::len).sum();
        let mut s = self.state.lock();
        if s.closed.is_some() {
            return Err(SessionClosed);
        }
        if s.in_bytes > 0 && s.in_bytes + len > self.max_in {
            return Ok(false);
        }
        s.in_bytes += len;
        s.inbox.extend(messages.drain(..));
        drop(s);
        self.in_ready.notify_waiters();
        Ok(true)
    }

    /// Resolves when the incoming queue may have room (or the session closed).
    pub(crate) fn in_room(&self) -> impl Future<Output = ()> + '_ {
        self.in_room.notified()
    }

    /// Queues messages from the client, waiting for room.
    pub(crate) async fn deliver(&self, mut messages: Vec<String>) -> Result<(), SessionClosed> {
        loop {
            let room = self.in_room.notified();
            if self.try_deliver(&mut messages)? {
                return Ok(());
            }
            room.await;
        }
    }

    /// Makes a request the session's receiver, unless another one is.
    pub(crate) fn attach(&self) -> Attach {
        let mut s = self.state.lock();
        if s.receiver.is_some() {
            return Attach::Busy;
        }
        let token = s.next_token;
        s.next_token += 1;
        s.receiver = Some(token);
        let open = !s.opened;
        s.opened = true;
        drop(s);
        self.changed.notify_waiters();
        Attach::Receiving { token, open }
    }

    /// Ends a request's turn as receiver; `interrupted` when the client went away before the
    /// request was done, which closes an open session.
    pub(crate) fn detach(&self, token: u64, interrupted: bool) {
        let mut s = self.state.lock();
        if s.receiver != Some(token) {
            return;
        }
        s.receiver = None;
        s.detached_at = Instant::now();
        if interrupted && s.closed.is_none() {
            s.closed = Some(CloseReason::interrupted());
            drop(s);
            self.wake_all();
        } else {
            drop(s);
            self.changed.notify_waiters();
        }
    }

    /// Takes every queued outgoing message, and the close reason if the session is closed.
    pub(crate) fn take(&self) -> (Vec<String>, Option<CloseReason>) {
        let mut s = self.state.lock();
        let messages: Vec<String> = s.out.drain(..).collect();
        if s.out.capacity() > 64 {
            s.out = VecDeque::new();
        }
        s.out_bytes = 0;
        let closed = s.closed.clone();
        drop(s);
        if !messages.is_empty() {
            self.out_room.notify_waiters();
        }
        (messages, closed)
    }

    /// Resolves when there may be something to take.
    pub(crate) fn out_ready(&self) -> impl Future<Output = ()> + '_ {
        self.out_ready.notified()
    }

    /// Resolves once no request has received for `delay`: the client is gone.
    pub(crate) async fn abandoned(&self, delay: Duration) {
        loop {
            let changed = self.changed.notified();
            let deadline = {
                let s = self.state.lock();
                s.receiver.is_none().then(|| s.detached_at + delay)
            };
            match deadline {
                None => changed.await,
                Some(at) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = sleep_until(at) => {
                            let s = self.state.lock();
                            if s.receiver.is_none() && s.detached_at + delay <= Instant::now() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Why a new session was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The bound on live sessions is reached.
    TooMany,
}

/// The sessions of one endpoint that HTTP requests find by id, and the count of every live
/// session (WebSocket ones included), which is bounded.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    live: AtomicUsize,
}

/// A counted place among the live sessions, released on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    /// Takes a place for a new session if fewer than `max` are live.
    pub(crate) fn slot(self: &Arc<Self>, max: usize) -> Result<Slot, OpenError> {
        let mut live = self.live.load(Ordering::Acquire);
        loop {
            if live >= max {
                return Err(OpenError::TooMany);
            }
            match self
                .live
                .compare_exchange(live, live + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Ok(Slot {
                        registry: self.clone(),
                    });
                }
                Err(now) => live = now,
            }
        }
    }

    /// Live sessions, WebSocket ones included.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().get(id).cloned()
    }

    /// The session `id`, or a new one made by `make` (under the registry's lock, so two
    /// requests for one new id get one session). `Ok((session, true))` when new.
    pub(crate) fn get_or_insert(
        &self,
        id: &str,
        make: impl FnOnce() -> Result<Arc<Session>, OpenError>,
    ) -> Result<(Arc<Session>, bool), OpenError> {
        let mut map = self.sessions.lock();
        if let Some(s) = map.get(id) {
            return Ok((s.clone(), false));
        }
        let session = make()?;
        map.insert(session.id.clone(), session.clone());
        Ok((session, true))
    }

    /// Forgets `session` (if the id still names it).
    pub(crate) fn remove(&self, session: &Arc<Session>) {
        let mut map = self.sessions.lock();
        if map
            .get(&session.id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            map.remove(&session.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_receiver_is_refused_until_the_first_detaches() {
        let s = Session::new("s".into(), 100, 100);
        let Attach::Receiving { token, open } = s.attach() else {
            panic!("first receiver refused")
        };
        assert!(open);
        assert!(matches!(s.attach(), Attach::Busy));
        s.detach(token, false);
        assert!(matches!(s.attach(), Attach::Receiving { open: false, .. }));
    }

    #[tokio::test]
    async fn an_interrupted_receiver_closes_the_session() {
        let s = Session::new("s".into(), 100, 100);
        let Attach::Receiving { token, .. } = s.attach() else {
            panic!("refused")
        };
        s.detach(token, true);
        assert_eq!(s.take().1, Some(CloseReason::interrupted()));
        assert_eq!(s.send("x".into()).await, Err(SessionClosed));
        assert_eq!(s.recv().await, None);
    }

    #[tokio::test]
    async fn queues_are_bounded_and_messages_before_the_close_are_still_read() {
        let s = Session::new("s".into(), 10, 10);
        s.send("0123456789".into()).await.unwrap();
        let blocked = tokio::time::timeout(Duration::from_millis(50), s.send("x".into())).await;
        assert!(blocked.is_err(), "a full queue makes the sender wait");
        assert_eq!(s.take().0, vec!["0123456789".to_owned()]);
        s.send("x".into()).await.unwrap();

        let mut batch = vec!["0123456789".to_owned()];
        assert_eq!(s.try_deliver(&mut batch), Ok(true));
        let mut more = vec!["y".to_owned()];
        assert_eq!(s.try_deliver(&mut more), Ok(false));
        s.close(CloseReason::go_away());
        assert_eq!(s.recv().await.as_deref(), Some("0123456789"));
        assert_eq!(s.recv().await, None);
        assert_eq!(s.try_deliver(&mut more), Err(SessionClosed));
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_waits_for_the_delay_without_a_receiver() {
        let s = Session::new("s".into(), 10, 10);
        let Attach::Receiving { token, .. } = s.attach() else {
            panic!("refused")
        };
        let started = Instant::now();
        let watch = {
            let s = s.clone();
            tokio::spawn(async move { s.abandoned(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!watch.is_finished(), "a receiver is attached");
        s.detach(token, false);
        watch.await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(35));
    }

    #[test]
    fn the_registry_bounds_live_sessions() {
        let r = Arc::new(Registry::default());
        let a = r.slot(2).unwrap();
        let _b = r.slot(2).unwrap();
        assert_eq!(r.slot(2).unwrap_err(), OpenError::TooMany);
        drop(a);
        assert_eq!(r.live(), 1);
        assert!(r.slot(2).is_ok());
    }
}
