use stomp_runtime::advice::{HandlerResult, Invocation, Next, Tag};
use stomp_runtime::handler::Reply;
use stomp_runtime::prelude::*;
use stomp_runtime::{
    after_error, after_returning, around, before, message_exception_handler, message_mapping,
    send_to, send_to_user, session_event, MessagingTemplate, SessionEvent,
};

pub const AUDITED: Tag = Tag::new("audited");
mod tags {
    pub const SLOW: stomp_runtime::advice::Tag = stomp_runtime::advice::Tag::new("slow");
}

struct Audit;

#[message_mapping("/payment.pay", tags = [AUDITED, tags::SLOW], roles = ["cashier", "ROLE_admin"])]
async fn pay() -> String {
    "paid".into()
}

#[around("/payment.**", order = -5)]
async fn every_form(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

#[around(any(tag(AUDITED), handler("payments::*"), all(destination("/a.*"), not(tag(tags::SLOW)))), order = 10)]
async fn with_state(State(_audit): State<Audit>, next: Next, inv: Invocation) -> HandlerResult {
    next.run(inv).await
}

#[around]
async fn everything(inv: Invocation, next: Next) -> HandlerResult {
    next.run(inv).await
}

#[before("/payment.**")]
async fn plain_before(_inv: &Invocation) {}

#[before("/payment.**")]
async fn refusing_before(inv: &Invocation, Header(key): Header<String>) -> Result<(), StompError> {
    if key.is_empty() || inv.payload().is_empty() {
        return Err(StompError::new("no"));
    }
    Ok(())
}

#[after_returning("/payment.**")]
async fn observe(_inv: &Invocation, _reply: Option<&Reply>) {}

#[after_error(tag(AUDITED), order = 1)]
async fn failed(_inv: &Invocation, _err: &StompError, State(_a): State<Audit>) {}

#[derive(Debug, thiserror::Error)]
#[error("declined")]
struct Declined;

#[message_exception_handler]
async fn any_error(err: &StompError) -> String {
    err.to_string()
}

#[message_exception_handler("/payment.**", order = 2)]
#[send_to_user("/queue/payment-errors")]
async fn typed(_err: &Declined, inv: &Invocation) -> Option<String> {
    Some(inv.destination().to_owned())
}

#[send_to("/topic/failures")]
#[message_exception_handler(tag(AUDITED))]
async fn broadcast(_err: &StompError) -> &'static str {
    "failed"
}

#[message_exception_handler(handler("payments::*"), error_frame)]
async fn fatal(_err: &Declined) -> String {
    "fatal".into()
}

#[session_event]
async fn events(_event: SessionEvent, _template: MessagingTemplate) {}

#[session_event]
async fn events_only(_event: SessionEvent) {}

fn main() {
    let _ = stomp_runtime::StompServer::builder()
        .without_discovery()
        .handler(pay::HANDLER)
        .advice(every_form::ADVICE)
        .advice(failed::ADVICE)
        .exception_handler(typed::EXCEPTION_HANDLER)
        .build();
    let _ = (with_state::ADVICE, everything::ADVICE, plain_before::ADVICE, refusing_before::ADVICE);
    let _ = (observe::ADVICE, any_error::EXCEPTION_HANDLER, broadcast::EXCEPTION_HANDLER);
    let _ = (fatal::EXCEPTION_HANDLER, events::LISTENER, events_only::LISTENER);
}
