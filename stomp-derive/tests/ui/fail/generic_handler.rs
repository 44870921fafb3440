use stomp_runtime::message_mapping;

#[message_mapping("/x")]
async fn generic<T>() {}

fn main() {}
