//! An async STOMP client over TCP and WebSocket.
