use stomp_runtime::message_mapping;

#[message_mapping("/x")]
#[message_mapping("/y")]
async fn twice() {}

fn main() {}
