use stomp_runtime::advice::{HandlerResult, Invocation};
use stomp_runtime::around;

#[around("/a")]
async fn no_next(inv: Invocation) -> HandlerResult {
    let _ = inv;
    Ok(None)
}

fn main() {}
