//! One structured log line per handler call (handler, user, destination, outcome,
//! duration): an advice around every handler.

use stomp_runtime::advice::{self, HandlerResult, Invocation, Next};
use stomp_runtime::around;

/// Outermost around every handler of the chat.
#[around(order = -1000)]
pub async fn log_calls(inv: Invocation, next: Next) -> HandlerResult {
    advice::logged(inv, next).await
}
