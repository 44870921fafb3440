use stomp_runtime::subscribe_mapping;

#[subscribe_mapping("/history")]
fn history() -> Vec<String> {
    Vec::new()
}

fn main() {}
