use stomp_runtime::advice::{HandlerResult, Invocation, Next, Tag};
use stomp_runtime::{around, message_mapping};

pub const AUDITED: Tag = Tag::new("audited");

#[message_mapping("/pay", tags = [AUDITD])]
async fn pay() {}

#[around(tag(AUDITTED))]
async fn audit(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

fn main() {}
