use stomp_runtime::{message_mapping, send_to};

#[message_mapping("/chat.{room}")]
#[send_to("/topic/rooms.{roon}")]
async fn typo() -> String {
    String::new()
}

fn main() {}
