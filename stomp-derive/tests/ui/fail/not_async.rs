use stomp_runtime::message_mapping;

#[message_mapping("/sync")]
fn sync_handler() -> String {
    String::new()
}

fn main() {}
