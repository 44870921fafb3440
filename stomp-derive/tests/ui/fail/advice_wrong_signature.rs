use stomp_runtime::advice::{HandlerResult, Invocation, Next};
use stomp_runtime::{after_error, around, before, StompError};

#[around("/a")]
async fn by_reference(inv: &Invocation, next: Next) -> HandlerResult {
    let _ = (inv, next);
    Ok(None)
}

#[before("/a")]
async fn before_with_next(inv: &Invocation, next: Next) {
    let _ = (inv, next);
}

#[after_error("/a")]
async fn no_error_param(inv: &Invocation) {
    let _ = inv;
}

#[after_error("/a")]
async fn returns_something(_inv: &Invocation, _err: &StompError) -> bool {
    true
}

fn main() {}
