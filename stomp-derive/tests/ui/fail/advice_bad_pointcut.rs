use stomp_runtime::advice::{HandlerResult, Invocation, Next};
use stomp_runtime::around;

#[around("/payment.{id")]
async fn bad_destination(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

#[around(handler("payments:pay"))]
async fn bad_handler_path(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

#[around(every("/x"))]
async fn unknown_form(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

#[around(any())]
async fn empty_any(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

fn main() {}
