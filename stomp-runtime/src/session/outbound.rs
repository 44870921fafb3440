//! One session's outbound queue: bounded in bytes, drained by one writer.
//!
//! Everything lives in one allocation shared by the session, its subscriptions and the
//! writer; an idle queue holds no buffer at all.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
};

use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::budget::MemoryBudget;
use crate::config::SlowConsumerPolicy;

/// An item for the writer.
#[derive(Debug)]
pub(crate) enum Out {
    /// A whole encoded frame.
    Frame(Bytes),
    /// A MESSAGE: the per-subscription head, then the part shared by all subscribers.
    Message { head: Bytes, shared: Bytes },
    /// Write nothing more and close the connection cleanly.
    Close,
}

impl Out {
    fn len(&self) -> usize {
        match self {
            Out::Frame(b) => b.len(),
            Out::Message { head, shared } => head.len() + shared.len(),
            Out::Close => 0,
        }
    }
}

/// Why a connection closes, for transports that can say (WebSocket close codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// DISCONNECT, or a STOMP error the ERROR frame explains (1000).
    Normal,
    /// A frame or message over the size limit (1009).
    TooBig,
    /// The peer broke the transport's protocol (1002).
    Protocol,
    /// A text message that is not UTF-8 (1007).
    InvalidData,
    /// A limit of the server's, such as the slow-consumer bound (1008).
    Policy,
    /// The server is at a limit now; the peer may try again later (1013).
    TryAgain,
}

impl CloseReason {
    fn from_u8(n: u8) -> Self {
        match n {
            1 => CloseReason::TooBig,
            2 => CloseReason::Protocol,
            3 => CloseReason::InvalidData,
            4 => CloseReason::Policy,
            5 => CloseReason::TryAgain,
            _ => CloseReason::Normal,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            CloseReason::Normal => 0,
            CloseReason::TooBig => 1,
            CloseReason::Protocol => 2,
            CloseReason::InvalidData => 3,
            CloseReason::Policy => 4,
            CloseReason::TryAgain => 5,
        }
    }
}

/// Why the queue refused an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The session is closing or closed.
    Closed,
    /// The byte bound would be exceeded.
    Full,
}

/// How much a session's outbound queue may hold, and for how long.
#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    /// Above this many bytes the session is behind ([`Limits::max_outbound_bytes`]).
    ///
    /// [`Limits::max_outbound_bytes`]: crate::config::Limits::max_outbound_bytes
    pub(crate) high_water: usize,
    /// Never more than this many bytes, however briefly.
    pub(crate) hard_max: usize,
    /// How long the queue may stay above `high_water` before the session is cut off.
    pub(crate) grace: Duration,
    pub(crate) policy: SlowConsumerPolicy,
    pub(crate) budget: MemoryBudget,
}

#[derive(Debug)]
struct Shared {
    items: Mutex<VecDeque<Out>>,
    /// Bytes queued and not yet written.
    queued: AtomicUsize,
    bounds: Bounds,
    /// Since when the queue has been above the high-water mark, if it is.
    behind_since: Mutex<Option<Instant>>,
    /// Set to tear the connection down without draining (slow consumer, lost peer).
    killed: AtomicBool,
    overflowed: AtomicBool,
    /// The ERROR to send, best effort, when the connection is torn down for a fault the
    /// session did not see (a slow consumer): `message` header and body.
    farewell: Mutex<Option<(String, String)>>,
    /// The [`CloseReason`] of a close the session asked for.
    close_reason: AtomicU8,
    /// [`Outbound::fail`] was called.
    failing: AtomicBool,
    /// The index in `Version::ALL` of the session's version.
    version: AtomicU8,
    /// Wakes the writer when an item arrives.
    data: Notify,
    /// Wakes everyone waiting for the kill.
    kill: Notify,
    /// Wakes whoever waits for room (a queue's backlog).
    room: Notify,
    /// Wakes the watchdog when the queue goes above the high-water mark.
    behind: Notify,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // What was never written gives its bytes back.
        self.bounds.budget.release(*self.queued.get_mut());
    }
}

/// The sending side, cloned into every subscription of the session.
#[derive(Clone, Debug)]
pub(crate) struct Outbound {
    shared: Arc<Shared>,
}

/// The writer's side.
pub(crate) struct OutboundRx {
    shared: Arc<Shared>,
}

impl OutboundRx {
    /// Moves every queued item into `batch` (waiting for one if there is none).
    pub(crate) async fn recv_batch(&self, batch: &mut VecDeque<Out>) {
        loop {
            {
                let mut items = self.shared.items.lock();
                if !items.is_empty() {
                    std::mem::swap(&mut *items, batch);
                    return;
                }
            }
            self.shared.data.notified().await;
        }
    }

    /// Marks `item` as written, releasing its bytes from the bound.
    pub(crate) fn written(&self, item: &Out) {
        let s = &*self.shared;
        let len = item.len();
        let before = s.queued.fetch_sub(len, Ordering::AcqRel);
        s.bounds.budget.release(len);
        let after = before - len;
        if before > s.bounds.high_water && after <= s.bounds.high_water {
            *s.behind_since.lock() = None;
        }
        let half = s.bounds.high_water / 2;
        // Crossing half the bound wakes whoever waits for room.
        if before > half && after <= half {
            s.room.notify_waiters();
        }
    }
}

impl Outbound {
    pub(crate) fn new(bounds: Bounds) -> (Self, OutboundRx) {
        let shared = Arc::new(Shared {
            items: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            bounds,
            behind_since: Mutex::new(None),
            killed: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            farewell: Mutex::new(None),
            close_reason: AtomicU8::new(0),
            failing: AtomicBool::new(false),
            version: AtomicU8::new(2),
            data: Notify::new(),
            kill: Notify::new(),
            room: Notify::new(),
            behind: Notify::new(),
        });
        (
            Self {
                shared: shared.clone(),
            },
            OutboundRx { shared },
        )
    }

    /// Queues an item. A burst may take the queue past the high-water mark (up to the
    /// hard bound); the slow-consumer policy applies past the hard bound, or when the queue
    /// stays behind (see [`Outbound::watchdog`]), or when the memory budget is spent.
    pub(crate) fn push(&self, item: Out) -> Result<(), PushError> {
        self.enqueue(item, Admit::Burst)
    }

    /// Queues an item if it fits under the high-water mark; otherwise refuses it, without the
    /// slow-consumer policy (for messages that can wait elsewhere, like a queue's backlog).
    pub(crate) fn offer(&self, item: Out) -> Result<(), PushError> {
        self.enqueue(item, Admit::UnderHighWater)
    }

    fn enqueue(&self, item: Out, admit: Admit) -> Result<(), PushError> {
        let s = &*self.shared;
        if s.killed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        let len = item.len();
        let control = admit == Admit::Control;
        let limit = match (admit, s.bounds.policy) {
            (Admit::UnderHighWater, _) | (_, SlowConsumerPolicy::DropMessage) => {
                s.bounds.high_water
            }
            (Admit::Burst | Admit::Control, SlowConsumerPolicy::Disconnect) => s.bounds.hard_max,
        };
        let before = s.queued.fetch_add(len, Ordering::AcqRel);
        // One item larger than the bound still goes through an empty queue.
        if before > 0 && before + len > limit {
            s.queued.fetch_sub(len, Ordering::AcqRel);
            if admit != Admit::UnderHighWater && s.bounds.policy == SlowConsumerPolicy::Disconnect {
                self.slow_consumer(format!(
                    "The session's outbound queue would pass {limit} bytes; the connection is closed."
                ));
            }
            return Err(PushError::Full);
        }
        // Control frames (RECEIPT, ERROR) are few and must get through: they may overdraw.
        if control {
            s.bounds.budget.force_take(len);
        } else if let Err(e) = s.bounds.budget.try_take(len) {
            s.queued.fetch_sub(len, Ordering::AcqRel);
            if admit != Admit::UnderHighWater {
                self.kill_with("memory budget exhausted", e.to_string());
            }
            return Err(PushError::Full);
        }
        if before + len > s.bounds.high_water {
            let mut since = s.behind_since.lock();
            if since.is_none() {
                *since = Some(Instant::now());
                s.behind.notify_one();
            }
        }
        s.items.lock().push_back(item);
        s.data.notify_one();
        Ok(())
    }

    /// Queues a control frame (CONNECTED, RECEIPT, ERROR).
    pub(crate) fn push_frame(&self, frame: Bytes) -> Result<(), PushError> {
        self.enqueue(Out::Frame(frame), Admit::Control)
    }

    /// Asks the writer to flush what is queued, then close.
    pub(crate) fn close(&self) {
        self.close_with(CloseReason::Normal);
    }

    /// Asks the writer to flush what is queued, then close for `reason`.
    pub(crate) fn close_with(&self, reason: CloseReason) {
        self.shared
            .close_reason
            .store(reason.as_u8(), Ordering::Release);
        self.shared.items.lock().push_back(Out::Close);
        self.shared.data.notify_one();
    }

    /// Why the session asked to close.
    pub(crate) fn close_reason(&self) -> CloseReason {
        CloseReason::from_u8(self.shared.close_reason.load(Ordering::Acquire))
    }

    /// Tears the connection down at once, without draining.
    pub(crate) fn kill(&self) {
        if !self.shared.killed.swap(true, Ordering::AcqRel) {
            self.shared.kill.notify_waiters();
            self.shared.room.notify_waiters();
        }
    }

    /// Tears the connection down for a fault the session did not see, telling the peer
    /// (best effort: it may not be reading) with an ERROR frame, and logging it.
    pub(crate) fn kill_with(&self, message: &str, details: String) {
        if self.is_killed() {
            return;
        }
        tracing::warn!(message, details = %details, "session cut off");
        self.shared
            .farewell
            .lock()
            .get_or_insert_with(|| (message.to_owned(), details));
        self.kill();
    }

    /// Ends the session for a fault the session did not see, after what is queued: the
    /// ERROR goes out last, then the connection closes. Later calls do nothing.
    pub(crate) fn fail(&self, message: &str, details: String) {
        if self.shared.failing.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(message, details = %details, "session ended");
        let frame = crate::frame::Frame::error(message, details);
        let version = self.shared.version.load(Ordering::Acquire);
        let _ = self.push_frame(frame.encode(crate::frame::Version::ALL[usize::from(version)]));
        self.close_with(CloseReason::Policy);
    }

    /// Records the version frames are encoded in (for [`Outbound::fail`]).
    pub(crate) fn set_version(&self, version: crate::frame::Version) {
        let index = crate::frame::Version::ALL
            .iter()
            .position(|v| *v == version)
            .expect("every version is in ALL");
        self.shared.version.store(index as u8, Ordering::Release);
    }

    fn slow_consumer(&self, details: String) {
        self.shared.overflowed.store(true, Ordering::Release);
        self.kill_with("slow consumer", details);
    }

    /// The ERROR to send before tearing the connection down, if any.
    pub(crate) fn farewell(&self) -> Option<(String, String)> {
        self.shared.farewell.lock().clone()
    }

    /// Cuts the session off once its queue has stayed above the high-water mark for the
    /// grace period: a consumer that stays behind, not one that met a burst. Resolves when
    /// the connection is torn down; runs beside the writer.
    pub(crate) async fn watchdog(&self) {
        let s = &*self.shared;
        loop {
            let behind = s.behind.notified();
            let since = *s.behind_since.lock();
            let Some(since) = since else {
                tokio::select! {
                    _ = behind => continue,
                    _ = self.killed() => return,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(since + s.bounds.grace) => {}
                _ = self.killed() => return,
            }
            if *s.behind_since.lock() == Some(since) {
                let (hw, grace) = (s.bounds.high_water, s.bounds.grace.as_millis());
                self.slow_consumer(format!(
                    "The session's outbound queue stayed above {hw} bytes for {grace} ms; \
                     the connection is closed."
                ));
                return;
            }
        }
    }

    /// Whether the connection is being torn down.
    pub(crate) fn is_killed(&self) -> bool {
        self.shared.killed.load(Ordering::Acquire)
    }

    /// Resolves once the connection is being torn down.
    pub(crate) fn killed(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                let notified = shared.kill.notified();
                if shared.killed.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        }
    }

    /// Resolves once the queue is at most half full (or the session is gone).
    pub(crate) fn room(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                let notified = shared.room.notified();
                if shared.queued.load(Ordering::Acquire) <= shared.bounds.high_water / 2
                    || shared.killed.load(Ordering::Acquire)
                {
                    return;
                }
                notified.await;
            }
        }
    }

    /// Whether the session was killed for being a slow consumer.
    #[cfg(test)]
    pub(crate) fn overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }
}

/// How an item is admitted to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admit {
    /// A MESSAGE that must go out: bursts allowed up to the hard bound.
    Burst,
    /// A MESSAGE that can wait elsewhere: only under the high-water mark.
    UnderHighWater,
    /// A control frame: like a burst, and never refused by the memory budget.
    Control,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Out {
        Out::Frame(Bytes::from(vec![b'x'; n]))
    }

    fn message(n: usize) -> Out {
        Out::Message {
            head: Bytes::new(),
            shared: Bytes::from(vec![b'x'; n]),
        }
    }

    fn bounds(high_water: usize, hard_max: usize, policy: SlowConsumerPolicy) -> Bounds {
        Bounds {
            high_water,
            hard_max,
            grace: Duration::from_secs(5),
            policy,
            budget: MemoryBudget::new(usize::MAX),
        }
    }

    #[tokio::test]
    async fn a_burst_passes_the_high_water_mark_but_not_the_hard_bound() {
        let (out, rx) = Outbound::new(bounds(100, 300, SlowConsumerPolicy::Disconnect));
        out.push(message(60)).unwrap();
        assert_eq!(out.offer(message(60)), Err(PushError::Full));
        assert!(!out.is_killed(), "offer never kills");
        out.push(message(60)).unwrap();
        out.push(message(60)).unwrap();
        assert!(!out.is_killed(), "a burst is not a slow consumer");
        assert_eq!(out.push(message(200)), Err(PushError::Full));
        assert!(out.is_killed() && out.overflowed());
        assert_eq!(
            out.farewell().map(|f| f.0),
            Some("slow consumer".to_owned())
        );
        out.killed().await;
        let mut batch = VecDeque::new();
        rx.recv_batch(&mut batch).await;
        assert_eq!(batch.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_that_stays_behind_past_the_grace_period_is_cut_off() {
        let (out, rx) = Outbound::new(bounds(100, 1000, SlowConsumerPolicy::Disconnect));
        let watchdog = tokio::spawn({
            let out = out.clone();
            async move { out.watchdog().await }
        });
        // Behind, then caught up within the grace period: kept.
        out.push(message(150)).unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let mut batch = VecDeque::new();
        rx.recv_batch(&mut batch).await;
        for item in batch.drain(..) {
            rx.written(&item);
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!out.is_killed());
        // Behind for longer than the grace period: cut off.
        out.push(message(150)).unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(out.is_killed() && out.overflowed());
        watchdog.await.unwrap();
    }

    #[tokio::test]
    async fn the_drop_policy_refuses_past_the_high_water_mark_and_keeps_the_session() {
        let (out, _rx) = Outbound::new(bounds(100, 1000, SlowConsumerPolicy::DropMessage));
        out.push(message(90)).unwrap();
        assert_eq!(out.push(message(20)), Err(PushError::Full));
        assert!(!out.is_killed());
    }

    #[tokio::test]
    async fn queued_bytes_are_charged_to_the_budget_until_written_or_dropped() {
        let budget = MemoryBudget::new(150);
        let (out, rx) = Outbound::new(Bounds {
            budget: budget.clone(),
            ..bounds(1000, 1000, SlowConsumerPolicy::Disconnect)
        });
        out.push(message(100)).unwrap();
        assert_eq!(budget.used(), 100);
        assert_eq!(out.offer(message(100)), Err(PushError::Full));
        assert!(!out.is_killed());
        // Control frames get through regardless.
        out.push_frame(Bytes::from(vec![b'e'; 100])).unwrap();
        let mut batch = VecDeque::new();
        rx.recv_batch(&mut batch).await;
        rx.written(&batch[0]);
        assert_eq!(budget.used(), 100);
        assert_eq!(out.push(message(100)), Err(PushError::Full), "budget spent");
        assert_eq!(
            out.farewell().map(|f| f.0),
            Some("memory budget exhausted".to_owned())
        );
        drop((out, rx, batch));
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn room_resolves_when_the_writer_drains_below_half() {
        let (out, rx) = Outbound::new(bounds(100, 100, SlowConsumerPolicy::DropMessage));
        out.push(frame(90)).unwrap();
        let room = tokio::spawn(out.room());
        let mut batch = VecDeque::new();
        rx.recv_batch(&mut batch).await;
        for item in &batch {
            rx.written(item);
        }
        room.await.unwrap();
        assert_eq!(
            out.push(message(200)),
            Ok(()),
            "an empty queue takes one large item"
        );
    }
}
