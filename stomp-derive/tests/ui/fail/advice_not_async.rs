use stomp_runtime::advice::{HandlerResult, Invocation, Next};
use stomp_runtime::around;

#[around("/a")]
fn not_async(inv: Invocation, next: Next) -> HandlerResult {
    let _ = (inv, next);
    Ok(None)
}

fn main() {}
