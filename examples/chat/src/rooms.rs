//! The rooms: who is in each, and its recent history. Registered on the server builder and
//! taken by handlers as `State<Rooms>`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use stomp_runtime::StompError;

use crate::message::{ChatMessage, Kind, now_ms};

/// The rooms the chat has. A fixed list keeps the memory bounded: history is kept per room.
pub const ROOMS: [&str; 3] = ["lobby", "kitchen", "garden"];

/// Messages of history kept per room, answered to `/app/rooms.{room}.history`.
pub const HISTORY_LEN: usize = 50;

/// Presence and history of every room; a cheap handle (clones share the rooms).
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    rooms: BTreeMap<&'static str, Room>,
    next_id: u64,
}

#[derive(Default)]
struct Room {
    history: VecDeque<ChatMessage>,
    /// User name → the sessions through which the user joined. A user with two tabs open
    /// stays in the room until both have left.
    members: BTreeMap<String, BTreeSet<Arc<str>>>,
}

impl Default for Rooms {
    fn default() -> Self {
        Self::new()
    }
}

impl Rooms {
    /// The rooms of [`ROOMS`], empty.
    pub fn new() -> Self {
        let rooms = ROOMS.iter().map(|r| (*r, Room::default())).collect();
        Self {
            inner: Arc::new(Mutex::new(Inner { rooms, next_id: 1 })),
        }
    }

    /// Records a line of chat by `user` in `room`, who must have joined it.
    pub fn post(&self, room: &str, user: &str, text: String) -> Result<ChatMessage, StompError> {
        let mut inner = self.inner.lock();
        let (key, r) = inner.room(room)?;
        if !r.members.contains_key(user) {
            return Err(StompError::new(format!(
                "join `{room}` before writing to it"
            )));
        }
        let message = inner.event(key, Kind::Chat, user, text);
        let r = inner.rooms.get_mut(key).expect("the room was found above");
        if r.history.len() == HISTORY_LEN {
            r.history.pop_front();
        }
        r.history.push_back(message.clone());
        Ok(message)
    }

    /// Adds `session` of `user` to `room`; the join event if the user was not there yet.
    pub fn join(
        &self,
        room: &str,
        user: &str,
        session: &Arc<str>,
    ) -> Result<Option<ChatMessage>, StompError> {
        let mut inner = self.inner.lock();
        let (key, r) = inner.room(room)?;
        let sessions = r.members.entry(user.to_owned()).or_default();
        let first = sessions.is_empty();
        sessions.insert(session.clone());
        Ok(first.then(|| inner.event(key, Kind::Join, user, String::new())))
    }

    /// Removes `session` from `room`; the leave event if it was the user's last one there.
    pub fn leave(
        &self,
        room: &str,
        user: &str,
        session: &str,
    ) -> Result<Option<ChatMessage>, StompError> {
        let mut inner = self.inner.lock();
        let (key, _) = inner.room(room)?;
        Ok(inner
            .remove_session(key, user, session)
            .then(|| inner.event(key, Kind::Leave, user, String::new())))
    }

    /// Removes a closed session from every room; the leave events that follow.
    pub fn session_closed(&self, session: &str) -> Vec<ChatMessage> {
        let mut inner = self.inner.lock();
        let joined: Vec<(&'static str, String)> = inner
            .rooms
            .iter()
            .flat_map(|(key, r)| {
                r.members
                    .iter()
                    .filter(|(_, sessions)| sessions.contains(session))
                    .map(|(user, _)| (*key, user.clone()))
            })
            .collect();
        let mut left = Vec::new();
        for (key, user) in joined {
            if inner.remove_session(key, &user, session) {
                left.push(inner.event(key, Kind::Leave, &user, String::new()));
            }
        }
        left
    }

    /// The users in `room`, sorted.
    pub fn members(&self, room: &str) -> Result<Vec<String>, StompError> {
        let mut inner = self.inner.lock();
        let (_, r) = inner.room(room)?;
        Ok(r.members.keys().cloned().collect())
    }

    /// The last [`HISTORY_LEN`] lines of chat of `room`, oldest first.
    pub fn history(&self, room: &str) -> Result<Vec<ChatMessage>, StompError> {
        let mut inner = self.inner.lock();
        let (_, r) = inner.room(room)?;
        Ok(r.history.iter().cloned().collect())
    }

    /// Whether `user` is in any room.
    pub fn is_present(&self, user: &str) -> bool {
        self.inner
            .lock()
            .rooms
            .values()
            .any(|r| r.members.contains_key(user))
    }
}

impl Inner {
    fn room(&mut self, room: &str) -> Result<(&'static str, &mut Room), StompError> {
        self.rooms
            .iter_mut()
            .find(|(key, _)| **key == room)
            .map(|(key, r)| (*key, r))
            .ok_or_else(|| {
                StompError::new(format!(
                    "there is no room `{room}`; the rooms are {}",
                    ROOMS.join(", ")
                ))
            })
    }

    fn event(&mut self, room: &str, kind: Kind, user: &str, text: String) -> ChatMessage {
        let id = self.next_id;
        self.next_id += 1;
        ChatMessage {
            id,
            kind,
            room: room.to_owned(),
            user: user.to_owned(),
            text,
            timestamp: now_ms(),
        }
    }

    /// Whether removing `session` took the user's last session out of the room.
    fn remove_session(&mut self, room: &str, user: &str, session: &str) -> bool {
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        let Some(sessions) = r.members.get_mut(user) else {
            return false;
        };
        if !sessions.remove(session) || !sessions.is_empty() {
            return false;
        }
        r.members.remove(user);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> Arc<str> {
        Arc::from(id)
    }

    #[test]
    fn a_user_joins_once_and_leaves_with_the_last_session() {
        let rooms = Rooms::new();
        let (s1, s2) = (session("1"), session("2"));
        assert_eq!(
            rooms.join("lobby", "ann", &s1).unwrap().unwrap().kind,
            Kind::Join
        );
        assert!(rooms.join("lobby", "ann", &s2).unwrap().is_none());
        assert_eq!(rooms.members("lobby").unwrap(), ["ann"]);
        assert!(rooms.leave("lobby", "ann", "1").unwrap().is_none());
        let left = rooms.session_closed("2");
        assert_eq!(left.len(), 1);
        assert_eq!((left[0].kind, left[0].user.as_str()), (Kind::Leave, "ann"));
        assert!(rooms.members("lobby").unwrap().is_empty());
        assert!(!rooms.is_present("ann"));
    }

    #[test]
    fn history_keeps_the_last_lines_only() {
        let rooms = Rooms::new();
        rooms.join("garden", "bo", &session("1")).unwrap();
        for i in 0..HISTORY_LEN + 3 {
            rooms.post("garden", "bo", format!("{i}")).unwrap();
        }
        let history = rooms.history("garden").unwrap();
        assert_eq!(history.len(), HISTORY_LEN);
        assert_eq!(history[0].text, "3");
        assert!(history.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn unknown_rooms_and_strangers_are_refused() {
        let rooms = Rooms::new();
        let err = rooms.join("attic", "ann", &session("1")).unwrap_err();
        assert!(err.message().contains("lobby, kitchen, garden"), "{err}");
        let err = rooms.post("lobby", "ann", "hi".into()).unwrap_err();
        assert_eq!(err.message(), "join `lobby` before writing to it");
    }
}
