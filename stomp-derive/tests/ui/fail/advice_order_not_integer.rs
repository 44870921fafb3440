use stomp_runtime::advice::{HandlerResult, Invocation, Next};
use stomp_runtime::around;

#[around("/a", order = "first")]
async fn text_order(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

#[around("/a", order = 1, order = 2)]
async fn two_orders(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

#[around("/a", order = 99999999999)]
async fn too_large(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

fn main() {}
