use stomp_runtime::{message_mapping, send_to};

#[message_mapping("/x")]
#[send_to("/topic/a")]
#[send_to("/topic/b")]
async fn twice() -> String {
    String::new()
}

fn main() {}
