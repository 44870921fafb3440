use stomp_runtime::message_mapping;

#[message_mapping]
async fn nowhere() {}

fn main() {}
