//! Session events: devices coming and going (a device gone silent past its heart-beat ends
//! its session like any other, and raises an offline alert), and guides going on and off
//! duty as they listen for calls.

use stomp_runtime::{MessagingTemplate, Principal, SessionEvent};
use tracing::warn;

use crate::auth::{DEVICE, GUIDE, area_of};
use crate::controllers::{ALERTS, BOARD_DEVICES};
use crate::state::Dispatch;

/// Where guides listen for calls; subscribing to it puts them on duty.
pub const CALLS_QUEUE: &str = "/user/queue/calls";

/// Updates `dispatch` for `event` and publishes what changed.
pub async fn on_event(dispatch: Dispatch, event: SessionEvent, template: MessagingTemplate) {
    let Some(user) = event.principal().cloned() else {
        return;
    };
    if user.has_role(DEVICE) {
        device_event(&dispatch, &user, event, &template).await;
    } else if user.has_role(GUIDE) {
        guide_event(&dispatch, &user, event);
    }
}

async fn device_event(
    dispatch: &Dispatch,
    device: &Principal,
    event: SessionEvent,
    template: &MessagingTemplate,
) {
    match event {
        SessionEvent::Connected { session, .. } => {
            if let Some(cleared) = dispatch.connected(device.name(), &session) {
                publish(template, ALERTS, &cleared).await;
            }
        }
        SessionEvent::Disconnected { session, .. } => {
            if let Some((view, alert)) = dispatch.disconnected(device.name(), &session) {
                publish(template, BOARD_DEVICES, &view).await;
                publish(template, ALERTS, &alert).await;
            }
        }
        _ => {}
    }
}

fn guide_event(dispatch: &Dispatch, guide: &Principal, event: SessionEvent) {
    match event {
        SessionEvent::Subscribed {
            session,
            destination,
            ..
        } if destination == CALLS_QUEUE => {
            if let Some(area) = area_of(guide) {
                dispatch.on_duty(guide.name(), area, &session);
            }
        }
        SessionEvent::Unsubscribed {
            session,
            destination,
            ..
        } if destination == CALLS_QUEUE => dispatch.off_duty(guide.name(), &session),
        SessionEvent::Disconnected { session, .. } => dispatch.off_duty(guide.name(), &session),
        _ => {}
    }
}

async fn publish<T: serde::Serialize>(template: &MessagingTemplate, destination: &str, value: &T) {
    if let Err(e) = template.convert_and_send(destination, value).await {
        warn!(destination, error = %e, "not published");
    }
}
