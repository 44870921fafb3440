//! Who may send and subscribe where, checked on every frame before it is handled.
//!
//! - Nobody publishes to broker or user destinations directly: alerts, the board's feeds and
//!   commands come from the server alone, so a client SEND must go to `/app/...`.
//! - A device SENDs only for itself: `/app/{kind}.{own id}.{verb}` (a status, an
//!   acknowledgement, a call, a payment); it cannot report for another device or answer
//!   another device's command.
//! - A device subscribes only to its own queues (`/user/queue/commands`, `payments`,
//!   `calls`, `errors`), never to the board or the alerts.
//! - People subscribe to their own queues and `/app/whoami`; operators also to the board and
//!   the alerts.
//!
//! A refused frame is answered on the sender's `/user/queue/errors` and the session stays
//! open, so a misconfigured device keeps reporting while someone fixes it.

use stomp_runtime::Principal;
use stomp_runtime::advice::{ChannelInterceptor, InboundContext, Refusal};
use stomp_runtime::frame::{Command, Frame};
use tracing::warn;

use crate::auth::{DEVICE, OPERATOR};

/// The queues a device may subscribe to.
pub const DEVICE_QUEUES: [&str; 4] = [
    "/user/queue/commands",
    "/user/queue/payments",
    "/user/queue/calls",
    "/user/queue/errors",
];

/// The channel interceptor enforcing the rules above.
#[derive(Clone, Copy, Debug, Default)]
pub struct Guard;

#[stomp_runtime::async_trait]
impl ChannelInterceptor for Guard {
    async fn pre_receive(
        &self,
        frame: &mut Frame,
        ctx: &mut InboundContext<'_>,
    ) -> Result<(), Refusal> {
        let check = match frame.command {
            Command::Send => check_send,
            Command::Subscribe => check_subscribe,
            _ => return Ok(()),
        };
        let Some(destination) = frame.get("destination") else {
            // The session reports the missing header itself.
            return Ok(());
        };
        let Some(user) = ctx.principal() else {
            return Err(Refusal::reply("log in first"));
        };
        check(user, destination).map_err(|reason| {
            warn!(
                user = user.name(),
                session = ctx.session_id(),
                command = ?frame.command,
                destination,
                reason,
                "frame refused"
            );
            Refusal::reply(reason)
        })
    }
}

/// Why `user` may not SEND to `destination`, if not.
pub fn check_send(user: &Principal, destination: &str) -> Result<(), String> {
    let Some(rest) = destination.strip_prefix("/app/") else {
        return Err(format!(
            "SEND only to /app/...: `{destination}` is published by the server alone"
        ));
    };
    if !user.has_role(DEVICE) {
        return Ok(());
    }
    let mut segments = rest.split('.');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(_), Some(id), Some(_), None) if id == user.name() => Ok(()),
        _ => Err(format!(
            "{} may send only for itself (/app/{{kind}}.{}.{{what}})",
            user.name(),
            user.name()
        )),
    }
}

/// Why `user` may not SUBSCRIBE to `destination`, if not.
pub fn check_subscribe(user: &Principal, destination: &str) -> Result<(), String> {
    if user.has_role(DEVICE) {
        return if DEVICE_QUEUES.contains(&destination) {
            Ok(())
        } else {
            Err(format!(
                "a device subscribes only to its own queues ({})",
                DEVICE_QUEUES.join(", ")
            ))
        };
    }
    let own_queue = destination
        .strip_prefix("/user/queue/")
        .is_some_and(|q| !q.is_empty() && !q.contains('/'));
    let board = destination == "/topic/alerts"
        || destination.starts_with("/topic/board.")
        || destination.starts_with("/app/board.");
    if own_queue || destination == "/app/whoami" || (board && user.has_role(OPERATOR)) {
        Ok(())
    } else if board {
        Err(format!("`{destination}` is for operators"))
    } else {
        Err(format!("`{destination}` is not open to {}", user.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str) -> Principal {
        Principal::new(id).with_authorities(["ROLE_device"])
    }

    fn operator() -> Principal {
        Principal::new("olivia").with_authorities(["ROLE_operator"])
    }

    fn guide() -> Principal {
        Principal::new("gina").with_authorities(["ROLE_guide", "area:T1-short"])
    }

    #[test]
    fn devices_send_only_for_themselves() {
        let d = device("gate-0001");
        assert!(check_send(&d, "/app/device.gate-0001.status").is_ok());
        assert!(check_send(&d, "/app/gate-x.gate-0001.status").is_ok());
        for bad in [
            "/app/device.gate-0002.status",
            "/app/device.gate-0001",
            "/app/device.gate-0001.status.x",
            "/app/gate.0001.open",
            "/topic/alerts",
            "/user/gate-0002/queue/commands",
            "/queue/commands-user1",
        ] {
            assert!(check_send(&d, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn people_send_only_to_the_application() {
        assert!(check_send(&operator(), "/app/gate.gate-0001.open").is_ok());
        assert!(
            check_send(&guide(), "/app/gate.gate-0001.open").is_ok(),
            "roles are the handlers' job"
        );
        let err = check_send(&operator(), "/topic/alerts").unwrap_err();
        assert!(err.contains("published by the server alone"), "{err}");
        assert!(check_send(&operator(), "/user/gate-0001/queue/commands").is_err());
    }

    #[test]
    fn subscriptions_follow_the_role() {
        let d = device("kiosk-0005");
        assert!(check_subscribe(&d, "/user/queue/commands").is_ok());
        assert!(check_subscribe(&d, "/topic/alerts").is_err());
        assert!(check_subscribe(&d, "/user/kiosk-0006/queue/commands").is_err());
        assert!(check_subscribe(&d, "/queue/commands").is_err());
        assert!(check_subscribe(&operator(), "/topic/board.devices").is_ok());
        assert!(check_subscribe(&operator(), "/app/board.overview").is_ok());
        assert!(check_subscribe(&operator(), "/topic/alerts").is_ok());
        assert!(check_subscribe(&operator(), "/topic/other").is_err());
        assert!(check_subscribe(&guide(), "/user/queue/calls").is_ok());
        assert!(check_subscribe(&guide(), "/app/whoami").is_ok());
        assert!(check_subscribe(&d, "/app/whoami").is_err());
        assert_eq!(
            check_subscribe(&guide(), "/topic/alerts").unwrap_err(),
            "`/topic/alerts` is for operators"
        );
        assert!(check_subscribe(&guide(), "/user/olivia/queue/calls").is_err());
    }
}
