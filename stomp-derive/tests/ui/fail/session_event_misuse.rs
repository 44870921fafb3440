use stomp_runtime::{session_event, SessionEvent};

#[session_event]
async fn no_event() {}

#[session_event]
async fn extra(_event: SessionEvent, _n: u32) {}

#[session_event("/x")]
async fn with_args(_event: SessionEvent) {}

fn main() {}
