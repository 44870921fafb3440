use stomp_runtime::{message_mapping, send_to_user};

#[message_mapping("/x")]
#[send_to_user("/queue/x", broadcst = false)]
async fn typo() -> String {
    String::new()
}

fn main() {}
