use stomp_runtime::message_mapping;

struct Controller;

impl Controller {
    #[message_mapping("/method")]
    async fn method(&self) -> String {
        String::new()
    }
}

fn main() {}
