use stomp_runtime::advice::Invocation;
use stomp_runtime::{message_exception_handler, send_to, StompError};

#[message_exception_handler]
async fn no_error(inv: &Invocation) -> String {
    inv.destination().to_owned()
}

#[message_exception_handler(error_frame)]
#[send_to("/topic/x")]
async fn two_targets(err: &StompError) -> String {
    err.to_string()
}

#[message_exception_handler]
async fn not_an_error(err: &u32) -> String {
    err.to_string()
}

fn main() {}
