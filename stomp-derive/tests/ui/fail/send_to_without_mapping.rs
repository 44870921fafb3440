use stomp_runtime::send_to;

#[send_to("/topic/x")]
async fn lonely() -> String {
    String::new()
}

fn main() {}
