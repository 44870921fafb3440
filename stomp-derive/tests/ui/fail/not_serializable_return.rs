use stomp_runtime::message_mapping;

struct Secret;

#[message_mapping("/x")]
async fn secret() -> Secret {
    Secret
}

fn main() {}
