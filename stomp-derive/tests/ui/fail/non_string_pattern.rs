use stomp_runtime::message_mapping;

#[message_mapping(42)]
async fn numbered() {}

fn main() {}
