//! How this server's destinations map onto RabbitMQ's STOMP destinations, and back.
//!
//! RabbitMQ's STOMP adapter knows `/topic/{routing key}` (the `amq.topic` exchange, one
//! private queue per subscription: every subscriber gets every message), `/queue/{name}`
//! (a durable queue its subscribers compete for), `/exchange/{exchange}/{routing key}` and
//! `/amq/queue/{name}` (an existing exchange or queue). Routing keys are words separated
//! by `.`; in bindings `*` stands for one word and `#` for any number of words. This
//! server's patterns separate segments with `.` or `/` and write `*` and `**`, so:
//!
//! - `/topic/rooms.*` binds `rooms.*` and `/topic/rooms.**` binds `rooms.#`;
//! - a pattern with a `/` after the prefix has no equivalent (`/` is part of a word to
//!   RabbitMQ) and is refused, as is a pattern under a queue prefix (a queue is one queue);
//! - a literal `/` in a name travels as `%2F`, which RabbitMQ reads as `/`; a name that
//!   already holds `%2F` is refused, since RabbitMQ would read it as `/` too;
//! - `#` is refused in a subscription: it is RabbitMQ's wildcard, not this server's.
//!
//! User destinations live on a separate exchange (`amq.direct` by default, which matches
//! routing keys exactly and so no pattern ever reaches) that no client destination may
//! name.

use super::config::RelayConfig;
use crate::broker::pattern;

/// AMQP's limit on routing keys and queue names (a "short string").
pub(crate) const MAX_NAME: usize = 255;

/// The broker prefixes a relay can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prefix {
    Topic,
    Queue,
    Exchange,
    AmqQueue,
}

impl Prefix {
    pub(crate) fn parse(prefix: &str) -> Option<Prefix> {
        match prefix {
            "/topic" => Some(Prefix::Topic),
            "/queue" => Some(Prefix::Queue),
            "/exchange" => Some(Prefix::Exchange),
            "/amq/queue" => Some(Prefix::AmqQueue),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Prefix::Topic => "/topic",
            Prefix::Queue => "/queue",
            Prefix::Exchange => "/exchange",
            Prefix::AmqQueue => "/amq/queue",
        }
    }
}

/// How subscribers of a destination share its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Every subscription gets every message (one private broker queue per subscription).
    Broadcast,
    /// Subscribers compete; each message goes to one of them.
    Queue,
}

/// A destination as the broker knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mapped {
    /// The destination header for the broker.
    pub(crate) broker: String,
    pub(crate) kind: Kind,
    /// Whether the destination is a pattern (its messages carry their own destination).
    pub(crate) pattern: bool,
}

/// Whether a destination is to be subscribed to or published to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    Subscribe,
    Publish,
}

/// Translates `destination` for the broker; the error says why it cannot be relayed.
pub(crate) fn to_broker(
    config: &RelayConfig,
    destination: &str,
    usage: Use,
) -> Result<Mapped, String> {
    let Some((prefix, rest)) = config.prefixes.iter().find_map(|p| {
        let rest = destination.strip_prefix(p.as_str())?.strip_prefix('/')?;
        Some((Prefix::parse(p)?, rest))
    }) else {
        return Err(format!(
            "no relay prefix covers it (relayed: {})",
            config.prefixes.join(", ")
        ));
    };
    if rest.is_empty() {
        return Err(format!("a name must follow `{}/`", prefix.as_str()));
    }
    let is_pattern = pattern::is_pattern(rest);
    match prefix {
        Prefix::Topic => {
            let key = routing_key(rest, usage)?;
            Ok(Mapped {
                broker: format!("/topic/{key}"),
                kind: Kind::Broadcast,
                pattern: is_pattern,
            })
        }
        Prefix::Queue => {
            if is_pattern {
                return Err(
                    "a queue is one queue: subscribe to it by name, without `*` or `**`".into(),
                );
            }
            Ok(Mapped {
                broker: format!("/queue/{}", name(rest)?),
                kind: Kind::Queue,
                pattern: false,
            })
        }
        Prefix::Exchange => {
            let exchange = rest.split('/').next().unwrap_or_default();
            if exchange.replace("%2F", "/").replace("%2f", "/") == config.user_exchange
                || exchange.is_empty()
            {
                return Err(format!(
                    "exchange `{exchange}` is reserved for user destinations; address users through the user prefix"
                ));
            }
            Ok(Mapped {
                broker: destination.to_owned(),
                kind: Kind::Broadcast,
                pattern: rest.contains(['*', '#']),
            })
        }
        Prefix::AmqQueue => {
            if is_pattern {
                return Err("a queue is one queue: name it without `*` or `**`".into());
            }
            Ok(Mapped {
                broker: destination.to_owned(),
                kind: Kind::Queue,
                pattern: false,
            })
        }
    }
}

/// A topic name as a RabbitMQ routing key (pattern), escaped for the destination header.
fn routing_key(rest: &str, usage: Use) -> Result<String, String> {
    let segments: Vec<&str> = rest.split(['.', '/']).collect();
    let is_pattern = segments.iter().any(|s| *s == "*" || *s == "**");
    if usage == Use::Subscribe && segments.contains(&"#") {
        return Err("`#` is RabbitMQ's wildcard, not this server's: write `**`".into());
    }
    if is_pattern && rest.contains('/') {
        return Err(
            "RabbitMQ separates routing-key words with `.` only: a pattern cannot use `/` after the prefix"
                .into(),
        );
    }
    if !is_pattern {
        return name(rest);
    }
    let key: Vec<&str> = rest
        .split('.')
        .map(|s| if s == "**" { "#" } else { s })
        .collect();
    let key = key.join(".");
    check_len(&key)?;
    Ok(key)
}

/// A literal name, `/` escaped as `%2F` (the only escape RabbitMQ reads).
fn name(rest: &str) -> Result<String, String> {
    if rest.to_ascii_lowercase().contains("%2f") {
        return Err("RabbitMQ reads `%2F` as `/`, so a name cannot contain it".into());
    }
    check_len(rest)?;
    Ok(rest.replace('/', "%2F"))
}

fn check_len(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME {
        return Err(format!(
            "{} bytes is longer than RabbitMQ's {MAX_NAME}-byte routing keys and queue names",
            name.len()
        ));
    }
    Ok(())
}

/// The destination a message from the broker was published to, in this server's terms
/// (for pattern subscriptions, whose messages each name their own).
pub(crate) fn from_broker(broker: &str) -> String {
    let Some(rest) = broker
        .strip_prefix("/topic/")
        .map(|r| ("/topic/", r))
        .or_else(|| broker.strip_prefix("/queue/").map(|r| ("/queue/", r)))
    else {
        return broker.to_owned();
    };
    let (prefix, rest) = rest;
    // RabbitMQ writes `/` as `%2F` and `%` as `%25`.
    let mut out = String::with_capacity(broker.len());
    out.push_str(prefix);
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '%' {
            match rest.get(i + 1..i + 3) {
                Some(h) if h.eq_ignore_ascii_case("2F") => {
                    out.push('/');
                    chars.nth(1);
                    continue;
                }
                Some("25") => {
                    out.push('%');
                    chars.nth(1);
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// The routing key of `user`'s user destination `destination` on the user exchange: the
/// user name's length first, so that no two (user, destination) pairs share a key.
pub(crate) fn user_key(user: &str, destination: &str) -> Result<String, String> {
    if !destination.starts_with('/') || destination.len() < 2 {
        return Err("a user destination looks like `/queue/name`".into());
    }
    let key = format!("{}:{user}{destination}", user.len());
    if key.to_ascii_lowercase().contains("%2f") {
        return Err(
            "RabbitMQ reads `%2F` as `/`, so user names and destinations cannot contain it".into(),
        );
    }
    check_len(&key).map_err(|e| format!("user {user:?}: {e}"))?;
    Ok(key)
}

/// The broker destination of a user routing key.
pub(crate) fn user_destination(config: &RelayConfig, key: &str) -> String {
    format!(
        "/exchange/{}/{}",
        config.user_exchange,
        key.replace('/', "%2F")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prefixes: &[&str]) -> RelayConfig {
        RelayConfig {
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            ..RelayConfig::default()
        }
    }

    fn sub(dest: &str) -> Result<Mapped, String> {
        to_broker(
            &config(&["/topic", "/queue", "/exchange", "/amq/queue"]),
            dest,
            Use::Subscribe,
        )
    }

    #[test]
    fn topics_and_queues_pass_as_they_are() {
        let m = sub("/topic/rooms.lobby").unwrap();
        assert_eq!(m.broker, "/topic/rooms.lobby");
        assert_eq!(m.kind, Kind::Broadcast);
        assert!(!m.pattern);
        let m = sub("/queue/jobs").unwrap();
        assert_eq!(m.broker, "/queue/jobs");
        assert_eq!(m.kind, Kind::Queue);
        assert_eq!(sub("/amq/queue/q1").unwrap().kind, Kind::Queue);
        assert_eq!(
            sub("/exchange/events/a.b").unwrap().broker,
            "/exchange/events/a.b"
        );
    }

    #[test]
    fn patterns_become_routing_key_wildcards() {
        let m = sub("/topic/rooms.*").unwrap();
        assert_eq!(m.broker, "/topic/rooms.*");
        assert!(m.pattern);
        assert_eq!(sub("/topic/**").unwrap().broker, "/topic/#");
        assert_eq!(sub("/topic/a.**.z").unwrap().broker, "/topic/a.#.z");
    }

    #[test]
    fn what_rabbitmq_cannot_express_is_refused_with_a_reason() {
        assert!(sub("/topic/a/*").unwrap_err().contains("`.` only"));
        assert!(sub("/queue/*").unwrap_err().contains("one queue"));
        assert!(sub("/topic/a.#").unwrap_err().contains("`**`"));
        assert!(sub("/topic/a%2Fb").unwrap_err().contains("%2F"));
        assert!(sub("/topic/").unwrap_err().contains("name must follow"));
        assert!(sub("/elsewhere/x").unwrap_err().contains("no relay prefix"));
        assert!(sub("/topicx/y").unwrap_err().contains("no relay prefix"));
        let long = format!("/topic/{}", "a".repeat(256));
        assert!(sub(&long).unwrap_err().contains("255"));
    }

    #[test]
    fn the_user_exchange_cannot_be_named_by_clients() {
        for dest in [
            "/exchange/amq.direct/5:alice/queue/x",
            "/exchange/amq.direct/anything",
            "/exchange//x",
        ] {
            assert!(sub(dest).is_err(), "{dest}");
        }
        assert!(sub("/exchange/amq.topic/x").is_ok());
    }

    #[test]
    fn a_literal_hash_may_be_published_but_not_subscribed() {
        let c = config(&["/topic"]);
        assert!(to_broker(&c, "/topic/a.#", Use::Publish).is_ok());
        assert!(to_broker(&c, "/topic/a.#", Use::Subscribe).is_err());
    }

    #[test]
    fn slashes_travel_escaped_and_come_back() {
        let m = sub("/topic/a/b").unwrap();
        assert_eq!(m.broker, "/topic/a%2Fb");
        assert_eq!(from_broker("/topic/a%2Fb%2525c"), "/topic/a/b%25c");
        assert_eq!(from_broker("/topic/x%"), "/topic/x%");
        assert_eq!(from_broker("/exchange/e/a%2Fb"), "/exchange/e/a%2Fb");
    }

    #[test]
    fn user_keys_cannot_collide() {
        // Without the length, both would be `al/ice/q`.
        assert_ne!(
            user_key("al", "/ice/q").unwrap(),
            user_key("al/ice", "/q").unwrap()
        );
        assert_eq!(user_key("alice", "/queue/x").unwrap(), "5:alice/queue/x");
        assert!(user_key("alice", "queue").is_err());
        assert!(user_key(&"u".repeat(300), "/queue/x").is_err());
        assert!(user_key("a%2fb", "/queue/x").is_err());
        let c = RelayConfig::default();
        assert_eq!(
            user_destination(&c, "5:alice/queue/x"),
            "/exchange/amq.direct/5:alice%2Fqueue%2Fx"
        );
    }
}
