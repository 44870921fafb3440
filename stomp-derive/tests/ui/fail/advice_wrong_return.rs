use stomp_runtime::advice::{Invocation, Next};
use stomp_runtime::around;

#[around("/a")]
async fn returns_unit(inv: Invocation, next: Next) {
    let _ = next.run(inv).await;
}

fn main() {}
