use stomp_runtime::message_mapping;

struct Config;

#[message_mapping("/x")]
async fn takes_config(ok: stomp_runtime::SessionInfo, config: Config) {
    let _ = (ok, config);
}

fn main() {}
