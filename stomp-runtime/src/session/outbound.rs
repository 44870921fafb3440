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

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

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
}

impl CloseReason {
    fn from_u8(n: u8) -> Self {
        match n {
            1 => CloseReason::TooBig,
            2 => CloseReason::Protocol,
            3 => CloseReason::InvalidData,
            4 => CloseReason::Policy,
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

#[derive(Debug)]
struct Shared {
    items: Mutex<VecDeque<Out>>,
    /// Bytes queued and not yet written.
    queued: AtomicUsize,
    max: usize,
    policy: SlowConsumerPolicy,
    /// Set to tear the connection down without draining (slow consumer, lost peer).
    killed: AtomicBool,
    overflowed: AtomicBool,
    /// The [`CloseReason`] of a close the session asked for.
    close_reason: AtomicU8,
    /// Wakes the writer when an item arrives.
    data: Notify,
    /// Wakes everyone waiting for the kill.
    kill: Notify,
    /// Wakes whoever waits for room (a queue's backlog).
    room: Notify,
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
        let len = item.len();
        let before = self.shared.queued.fetch_sub(len, Ordering::AcqRel);
        let half = self.shared.max / 2;
        // Crossing half the bound wakes whoever waits for room.
        if before > half && before - len <= half {
            self.shared.room.notify_waiters();
        }
    }
}

impl Outbound {
    pub(crate) fn new(max: usize, policy: SlowConsumerPolicy) -> (Self, OutboundRx) {
        let shared = Arc::new(Shared {
            items: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            max,
            policy,
            killed: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            close_reason: AtomicU8::new(0),
            data: Notify::new(),
            kill: Notify::new(),
            room: Notify::new(),
        });
        (
            Self {
                shared: shared.clone(),
            },
            OutboundRx { shared },
        )
    }

    /// Queues an item unless that would pass the byte bound; over the bound the
    /// slow-consumer policy applies.
    pub(crate) fn push(&self, item: Out) -> Result<(), PushError> {
        self.enqueue(item, true)
    }

    /// Queues an item if it fits under the bound; otherwise refuses it, without the
    /// slow-consumer policy (for messages that can wait elsewhere, like a queue's backlog).
    pub(crate) fn offer(&self, item: Out) -> Result<(), PushError> {
        self.enqueue(item, false)
    }

    fn enqueue(&self, item: Out, apply_policy: bool) -> Result<(), PushError> {
        let s = &*self.shared;
        if s.killed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        let len = item.len();
        let before = s.queued.fetch_add(len, Ordering::AcqRel);
        // One item larger than the bound still goes through an empty queue.
        if before > 0 && before + len > s.max {
            s.queued.fetch_sub(len, Ordering::AcqRel);
            if apply_policy && s.policy == SlowConsumerPolicy::Disconnect {
                s.overflowed.store(true, Ordering::Release);
                self.kill();
            }
            return Err(PushError::Full);
        }
        s.items.lock().push_back(item);
        s.data.notify_one();
        Ok(())
    }

    /// Queues a control frame (CONNECTED, RECEIPT, ERROR).
    pub(crate) fn push_frame(&self, frame: Bytes) -> Result<(), PushError> {
        self.push(Out::Frame(frame))
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
                if shared.queued.load(Ordering::Acquire) <= shared.max / 2
                    || shared.killed.load(Ordering::Acquire)
                {
                    return;
                }
                notified.await;
            }
        }
    }

    /// Whether the session was killed for being a slow consumer.
    pub(crate) fn overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Out {
        Out::Frame(Bytes::from(vec![b'x'; n]))
    }

    #[tokio::test]
    async fn bound_applies_the_policy_only_to_push() {
        let (out, rx) = Outbound::new(100, SlowConsumerPolicy::Disconnect);
        out.push(frame(60)).unwrap();
        assert_eq!(out.offer(frame(60)), Err(PushError::Full));
        assert!(!out.is_killed(), "offer never kills");
        assert_eq!(out.push(frame(60)), Err(PushError::Full));
        assert!(out.is_killed() && out.overflowed());
        out.killed().await;
        let mut batch = VecDeque::new();
        rx.recv_batch(&mut batch).await;
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test]
    async fn room_resolves_when_the_writer_drains_below_half() {
        let (out, rx) = Outbound::new(100, SlowConsumerPolicy::DropMessage);
        out.push(frame(90)).unwrap();
        let room = tokio::spawn(out.room());
        let mut batch = VecDeque::new();
        rx.recv_batch(&mut batch).await;
        for item in &batch {
            rx.written(item);
        }
        room.await.unwrap();
        assert_eq!(
            out.push(frame(200)),
            Ok(()),
            "an empty queue takes one large item"
        );
    }
}
