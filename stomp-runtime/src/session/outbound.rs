//! One session's outbound queue: bounded in bytes, drained by one writer.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

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

/// Why the queue refused an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The session is closing or closed.
    Closed,
    /// The byte bound would be exceeded.
    Full,
}

/// The sending side, cloned into every subscription of the session.
#[derive(Clone, Debug)]
pub(crate) struct Outbound {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    max: usize,
    policy: SlowConsumerPolicy,
    /// Cancelled to tear the connection down without draining (slow consumer, shutdown).
    kill: CancellationToken,
    overflowed: Arc<AtomicBool>,
    room: Arc<Notify>,
}

/// The writer's side.
pub(crate) struct OutboundRx {
    rx: mpsc::UnboundedReceiver<Out>,
    queued: Arc<AtomicUsize>,
    room: Arc<Notify>,
    half: usize,
}

impl OutboundRx {
    /// The next item; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Out> {
        self.rx.recv().await
    }

    /// Marks `item` as written, releasing its bytes from the bound.
    pub(crate) fn written(&self, item: &Out) {
        let len = item.len();
        let before = self.queued.fetch_sub(len, Ordering::AcqRel);
        // Crossing half the bound wakes whoever waits for room (a queue's backlog).
        if before > self.half && before - len <= self.half {
            self.room.notify_waiters();
        }
    }

    /// Takes an item that is already queued, without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Out> {
        self.rx.try_recv().ok()
    }
}

impl Outbound {
    pub(crate) fn new(max: usize, policy: SlowConsumerPolicy) -> (Self, OutboundRx) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let room = Arc::new(Notify::new());
        (
            Self {
                tx,
                queued: queued.clone(),
                max,
                policy,
                kill: CancellationToken::new(),
                overflowed: Arc::new(AtomicBool::new(false)),
                room: room.clone(),
            },
            OutboundRx {
                rx,
                queued,
                room,
                half: max / 2,
            },
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

    /// Resolves once the queue is at most half full (or the session is gone).
    pub(crate) fn room(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let room = self.room.clone();
        let queued = self.queued.clone();
        let kill = self.kill.clone();
        let half = self.max / 2;
        async move {
            loop {
                let notified = room.notified();
                if queued.load(Ordering::Acquire) <= half || kill.is_cancelled() {
                    return;
                }
                tokio::select! {
                    _ = notified => {}
                    _ = kill.cancelled() => return,
                }
            }
        }
    }

    fn enqueue(&self, item: Out, apply_policy: bool) -> Result<(), PushError> {
        if self.kill.is_cancelled() {
            return Err(PushError::Closed);
        }
        let len = item.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            if apply_policy && self.policy == SlowConsumerPolicy::Disconnect {
                self.overflowed.store(true, Ordering::Release);
                self.kill.cancel();
            }
            return Err(PushError::Full);
        }
        self.tx.send(item).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            PushError::Closed
        })
    }

    /// Queues a control frame (CONNECTED, RECEIPT, ERROR).
    pub(crate) fn push_frame(&self, frame: Bytes) -> Result<(), PushError> {
        self.push(Out::Frame(frame))
    }

    /// Asks the writer to flush what is queued, then close.
    pub(crate) fn close(&self) {
        let _ = self.tx.send(Out::Close);
    }

    /// The token that tears the connection down at once.
    pub(crate) fn kill_token(&self) -> &CancellationToken {
        &self.kill
    }

    /// Whether the session was killed for being a slow consumer.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Bytes queued and not yet written.
    #[allow(dead_code)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}
