//! `MessagingTemplate`: send to a destination or a user from anywhere.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::broker::BrokerMessage;
use crate::frame::Headers;
use crate::handler::StompError;
use crate::server::ServerInner;

/// Sends messages to broker destinations and users without a client message: from
/// handlers, actix-web HTTP handlers and background tasks (equipment status, alerts).
///
/// ```
/// # async fn run() -> Result<(), stomp_runtime::StompError> {
/// use stomp_runtime::StompServer;
///
/// let server = StompServer::builder().build().unwrap();
/// let template = server.template();
/// template.convert_and_send("/topic/status", &serde_json::json!({"gate": 3, "open": true})).await?;
/// template.convert_and_send_to_user("alice", "/queue/alerts", &"low battery").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MessagingTemplate {
    server: Arc<ServerInner>,
}

impl std::fmt::Debug for MessagingTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessagingTemplate")
    }
}

impl MessagingTemplate {
    pub(crate) fn new(server: Arc<ServerInner>) -> Self {
        Self { server }
    }

    /// Serializes `payload` as JSON and publishes it to `destination`.
    pub async fn convert_and_send<T: Serialize + ?Sized>(
        &self,
        destination: &str,
        payload: &T,
    ) -> Result<(), StompError> {
        self.convert_and_send_with(destination, payload, Headers::new())
            .await
    }

    /// Like [`convert_and_send`](Self::convert_and_send), with extra headers.
    pub async fn convert_and_send_with<T: Serialize + ?Sized>(
        &self,
        destination: &str,
        payload: &T,
        headers: Headers,
    ) -> Result<(), StompError> {
        let body = serde_json::to_vec(payload)?;
        self.send(destination, "application/json", Bytes::from(body), headers)
            .await
    }

    /// Publishes a raw body with a content type.
    pub async fn send(
        &self,
        destination: &str,
        content_type: &str,
        body: Bytes,
        headers: Headers,
    ) -> Result<(), StompError> {
        let message = BrokerMessage::new(destination, Some(content_type.to_owned()), headers, body);
        self.server.broker.publish(message).await?;
        Ok(())
    }

    /// Serializes `payload` as JSON and sends it to every session of `user`, at the user
    /// destination `destination` (e.g. `/queue/alerts`, subscribed as `/user/queue/alerts`).
    pub async fn convert_and_send_to_user<T: Serialize + ?Sized>(
        &self,
        user: &str,
        destination: &str,
        payload: &T,
    ) -> Result<(), StompError> {
        self.convert_and_send_to_user_with(user, destination, payload, Headers::new())
            .await
    }

    /// Like [`convert_and_send_to_user`](Self::convert_and_send_to_user), with extra
    /// headers.
    pub async fn convert_and_send_to_user_with<T: Serialize + ?Sized>(
        &self,
        user: &str,
        destination: &str,
        payload: &T,
        headers: Headers,
    ) -> Result<(), StompError> {
        let message = json_message(destination, payload, headers)?;
        self.server.try_send_to_user(user, message).await?;
        Ok(())
    }

    /// Serializes `payload` as JSON and sends it to one session's user destination.
    pub async fn convert_and_send_to_session<T: Serialize + ?Sized>(
        &self,
        session_id: &str,
        destination: &str,
        payload: &T,
    ) -> Result<(), StompError> {
        let message = json_message(destination, payload, Headers::new())?;
        self.server.send_to_session(session_id, &message).await;
        Ok(())
    }
}

fn json_message<T: Serialize + ?Sized>(
    destination: &str,
    payload: &T,
    headers: Headers,
) -> Result<Arc<BrokerMessage>, StompError> {
    let body = serde_json::to_vec(payload)?;
    Ok(BrokerMessage::new(
        destination,
        Some("application/json".to_owned()),
        headers,
        Bytes::from(body),
    ))
}
