use stomp_runtime::{message_mapping, send_to, send_to_user};

#[message_mapping("/x")]
#[send_to("/topic/x")]
#[send_to_user("/queue/x")]
async fn both() -> String {
    String::new()
}

fn main() {}
