use stomp_runtime::message_mapping;

#[message_mapping("/refund", tags = ["audited"])]
async fn refund() {}

fn main() {}
