use stomp_runtime::message_mapping;
use stomp_runtime::DestinationVar;

#[message_mapping("/chat.{room}")]
async fn wrong_name(DestinationVar(rom): DestinationVar<String>) {
    let _ = rom;
}

fn main() {}
