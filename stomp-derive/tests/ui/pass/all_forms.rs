use stomp_runtime::frame::Headers;
use stomp_runtime::prelude::*;
use stomp_runtime::{message_mapping, send_to, send_to_user, subscribe_mapping};

#[derive(Deserialize, Serialize)]
struct Chat {
    text: String,
}

struct Counter;

#[message_mapping("/chat.send.{room}")]
#[send_to("/topic/rooms.{room}")]
async fn one_pattern(Payload(msg): Payload<Chat>, DestinationVar(room): DestinationVar<String>) -> Chat {
    Chat { text: format!("{room}: {}", msg.text) }
}

#[message_mapping("/a.{x}", "/b/{x}")]
#[send_to("/topic/a", "/topic/b.{x}")]
async fn several_patterns_and_destinations(DestinationVar(x): DestinationVar<u32>) -> String {
    x.to_string()
}

#[send_to("/topic/above")]
#[message_mapping("/above")]
async fn send_to_written_above() -> &'static str {
    "ok"
}

#[message_mapping("/whisper")]
#[send_to_user("/queue/whispers")]
async fn to_user(user: Principal, Payload(text): Payload<String>) -> String {
    format!("{}: {text}", user.name())
}

#[message_mapping("/me")]
#[send_to_user("/queue/me", broadcast = false)]
async fn to_session(user: Option<Principal>, session: SessionInfo) -> Option<String> {
    user.map(|u| format!("{} on {}", u.name(), session.id))
}

#[subscribe_mapping("/rooms.{room}.history")]
async fn history(DestinationVar(room): DestinationVar<String>) -> Vec<Chat> {
    vec![Chat { text: room }]
}

#[message_mapping("/default")]
async fn default_destination(
    headers: Headers,
    Header(device_id): Header<u32>,
    body: Bytes,
    State(_c): State<Counter>,
    template: MessagingTemplate,
    Destination(d): Destination,
) -> Result<Json<(u32, usize, String)>, StompError> {
    let _ = (headers, template);
    Ok(Json((device_id, body.len(), d)))
}

#[message_mapping("/unit/**")]
async fn nothing_back() {}

#[message_mapping("/maybe.*")]
async fn result_of_option() -> Result<Option<Bytes>, std::io::Error> {
    Ok(None)
}

fn main() {
    let _ = StompServer::builder()
        .without_discovery()
        .handler(one_pattern::HANDLER)
        .handler(history::HANDLER)
        .build()
        .unwrap();
}
