use stomp_runtime::message_mapping;

#[message_mapping("/rooms.{room")]
async fn unclosed() {}

fn main() {}
