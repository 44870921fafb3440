//! Who connects: devices with their fleet credentials, people from the staff table.
//!
//! Both log in with the CONNECT `login` and `passcode` headers. A device's principal is its
//! id with the role `device` and the authorities `kind:{kind}` and `area:{area}`; a person's
//! is their name with their roles (`operator`, `guide`) and, for guides, the area they
//! cover. This [`Authenticator`] is where a token-based login plugs in: a bearer token in
//! the CONNECT headers, checked and turned into the same principals, replaces the staff
//! table without touching the handlers, the guard or the board.

use std::collections::HashMap;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stomp_runtime::async_trait;
use stomp_runtime::frame::Headers;
use stomp_runtime::security::{AuthError, Authenticator, Principal};

use crate::fleet::{Fleet, FleetKey};

/// The role of equipment.
pub const DEVICE: &str = "device";
/// The role of people at the control room's board: they may command equipment.
pub const OPERATOR: &str = "operator";
/// The role of guides on the floor: they answer kiosk calls in their area.
pub const GUIDE: &str = "guide";

/// One person allowed in.
#[derive(Clone, Debug)]
pub struct StaffMember {
    /// Login name.
    pub name: String,
    /// Password.
    pub password: String,
    /// Roles ([`OPERATOR`], [`GUIDE`]).
    pub roles: Vec<String>,
    /// For guides, the parking area they cover.
    pub area: Option<String>,
}

impl StaffMember {
    /// A person with one role.
    pub fn new(name: &str, password: &str, role: &str, area: Option<&str>) -> Self {
        Self {
            name: name.to_owned(),
            password: password.to_owned(),
            roles: vec![role.to_owned()],
            area: area.map(str::to_owned),
        }
    }

    fn principal(&self) -> Principal {
        let roles = self.roles.iter().map(|r| format!("ROLE_{r}"));
        let area = self.area.iter().map(|a| format!("area:{a}"));
        Principal::new(self.name.as_str()).with_authorities(roles.chain(area))
    }
}

/// The demo staff: two operators and a guide for each of four areas (the other four have
/// none on the roster, so calls there go to the operators). Passwords are the names
/// reversed: a demo table, to be replaced by a real identity provider.
pub fn demo_staff() -> Vec<StaffMember> {
    vec![
        StaffMember::new("olivia", "aivilo", OPERATOR, None),
        StaffMember::new("oscar", "racso", OPERATOR, None),
        StaffMember::new("gina", "anig", GUIDE, Some("T1-short")),
        StaffMember::new("gus", "sug", GUIDE, Some("T1-long")),
        StaffMember::new("grace", "ecarg", GUIDE, Some("T2-short")),
        StaffMember::new("glen", "nelg", GUIDE, Some("T2-long")),
    ]
}

/// The area a principal stands in or covers (its `area:` authority).
pub fn area_of(principal: &Principal) -> Option<&str> {
    principal
        .authorities()
        .find_map(|a| a.strip_prefix("area:"))
}

/// Checks CONNECT's `login` and `passcode` against the fleet and the staff table.
#[derive(Clone)]
pub struct DispatchAuth {
    fleet: Fleet,
    key: FleetKey,
    staff: Arc<HashMap<String, StaffMember>>,
    /// Keys the constant-time comparison of passwords.
    compare_key: [u8; 32],
}

impl DispatchAuth {
    /// Devices of `fleet` with passcodes derived from `key`, and `staff`.
    pub fn new(fleet: Fleet, key: FleetKey, staff: Vec<StaffMember>) -> Self {
        let staff = staff.into_iter().map(|s| (s.name.clone(), s)).collect();
        let mut compare_key = [0u8; 32];
        for (i, b) in compare_key.iter_mut().enumerate() {
            // Any fixed key works: both sides of the comparison are keyed alike.
            *b = i as u8 ^ 0x5c;
        }
        Self {
            fleet,
            key,
            staff: Arc::new(staff),
            compare_key,
        }
    }

    /// The principal for these credentials, or why not. The same answer for an unknown
    /// login and a wrong passcode, so logins cannot be probed.
    pub fn check(&self, login: &str, passcode: &str) -> Result<Principal, AuthError> {
        let refused = || AuthError("unknown login or wrong passcode".into());
        if let Some(device) = self.fleet.get(login) {
            if !self.key.verify(login, passcode) {
                return Err(refused());
            }
            return Ok(Principal::new(device.id.as_str()).with_authorities([
                format!("ROLE_{DEVICE}"),
                format!("kind:{}", device.kind),
                format!("area:{}", device.area),
            ]));
        }
        let member = self.staff.get(login).ok_or_else(refused)?;
        if !self.same(&member.password, passcode) {
            return Err(refused());
        }
        Ok(member.principal())
    }

    /// Constant-time equality: HMACs of both texts compared by the MAC's own verifier.
    fn same(&self, expected: &str, given: &str) -> bool {
        let tag = |text: &str| {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.compare_key)
                .expect("HMAC takes keys of any length");
            mac.update(text.as_bytes());
            mac
        };
        let expected = tag(expected).finalize().into_bytes();
        tag(given).verify_slice(&expected).is_ok()
    }
}

#[async_trait]
impl Authenticator for DispatchAuth {
    async fn authenticate(&self, headers: &Headers) -> Result<Option<Principal>, AuthError> {
        let login = headers
            .get("login")
            .filter(|l| !l.is_empty())
            .ok_or_else(|| AuthError("log in with the `login` and `passcode` headers".into()))?;
        let passcode = headers.get("passcode").unwrap_or_default();
        self.check(login, passcode).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> DispatchAuth {
        DispatchAuth::new(Fleet::new(20), FleetKey::new("k"), demo_staff())
    }

    #[test]
    fn devices_get_their_kind_and_area() {
        let a = auth();
        let p = a
            .check("kiosk-0005", &FleetKey::new("k").passcode("kiosk-0005"))
            .unwrap();
        assert!(p.has_role(DEVICE));
        assert!(p.has_authority("kind:kiosk"));
        assert_eq!(area_of(&p), Some("T1-short"));
        assert!(!p.has_role(OPERATOR));
    }

    #[test]
    fn staff_get_their_roles() {
        let a = auth();
        assert!(a.check("olivia", "aivilo").unwrap().has_role(OPERATOR));
        let gina = a.check("gina", "anig").unwrap();
        assert!(gina.has_role(GUIDE) && !gina.has_role(OPERATOR));
        assert_eq!(area_of(&gina), Some("T1-short"));
    }

    #[test]
    fn wrong_or_unknown_credentials_get_one_answer() {
        let a = auth();
        let wrong = a.check("olivia", "olivia").unwrap_err();
        let unknown = a.check("mallory", "x").unwrap_err();
        let device = a.check("gate-0001", "aivilo").unwrap_err();
        let foreign = a.check("gate-0001", &FleetKey::new("other").passcode("gate-0001"));
        assert_eq!(wrong, unknown);
        assert_eq!(wrong, device);
        assert_eq!(foreign.unwrap_err(), wrong);
    }
}
