//! Handlers registered at link time are collected once by `build()`, which refuses two
//! handlers for one destination, naming both and where they are.

use stomp_runtime::{BuildError, StompServer, message_mapping};

#[message_mapping("/gates.open")]
async fn open_gate() {}

#[message_mapping("/gates.open")]
async fn open_gate_again() {}

#[test]
fn duplicate_destinations_are_a_startup_error_naming_both_handlers() {
    let err = StompServer::builder()
        .build()
        .err()
        .expect("duplicate refused");
    assert!(matches!(err, BuildError::Handlers(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("`/gates.open`"), "{text}");
    assert!(text.contains("handlers_registry::open_gate ("), "{text}");
    assert!(
        text.contains("handlers_registry::open_gate_again ("),
        "{text}"
    );
    assert!(text.contains("handlers_registry.rs:7)"), "{text}");
    assert!(text.contains("handlers_registry.rs:10)"), "{text}");
}

#[test]
fn explicit_registration_without_discovery_takes_only_what_it_is_given() {
    let server = StompServer::builder()
        .without_discovery()
        .handler(open_gate::HANDLER)
        .build();
    assert!(server.is_ok());
}
