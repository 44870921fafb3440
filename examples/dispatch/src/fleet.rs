//! The equipment: which devices exist, what kind each is, which parking area it serves, and
//! the credentials each logs in with.
//!
//! The fleet is laid out from its size alone (device `i` always has the same id, kind and
//! area), so the server and the simulator agree on it without sharing a file. Each device's
//! passcode is derived from its id and a fleet key, as devices are provisioned at the
//! factory: the server stores one secret, not one password per device.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The parking areas of the airport, terminal first: where devices stand and where guides
/// are on duty.
pub const AREAS: [&str; 8] = [
    "T1-short",
    "T1-long",
    "T1-garage",
    "T1-valet",
    "T2-short",
    "T2-long",
    "T2-garage",
    "T2-valet",
];

/// Most devices a fleet may have: ids are laid out with up to six digits.
pub const MAX_DEVICES: usize = 999_999;

/// What a device is; it decides the commands it takes and the messages it may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An entry or exit barrier.
    Gate,
    /// A self-service kiosk: parking information, fee lookup, a call button.
    Kiosk,
    /// A payment station where drivers pay their parking fee.
    Station,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Gate, Kind::Kiosk, Kind::Station];

    /// The id prefix and destination segment of the kind (`gate`, `kiosk`, `station`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gate => "gate",
            Kind::Kiosk => "kiosk",
            Kind::Station => "station",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One device of the fleet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Its login and the middle segment of its destinations (`gate-0007`).
    pub id: String,
    /// What it is.
    pub kind: Kind,
    /// The parking area it serves (one of [`AREAS`]).
    pub area: &'static str,
}

/// The fleet key devices' passcodes are derived from.
#[derive(Clone)]
pub struct FleetKey(Arc<[u8]>);

impl fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetKey(..)")
    }
}

impl FleetKey {
    /// The key from its secret text.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self(secret.as_ref().into())
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    /// The passcode of device `id`: the first 128 bits of HMAC-SHA256(key, id), in hex.
    pub fn passcode(&self, id: &str) -> String {
        let mut mac = self.mac();
        mac.update(id.as_bytes());
        let tag = mac.finalize().into_bytes();
        tag[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `passcode` is device `id`'s, compared in constant time.
    pub fn verify(&self, id: &str, passcode: &str) -> bool {
        let Some(given) = decode_hex(passcode) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(id.as_bytes());
        mac.verify_truncated_left(&given).is_ok() && given.len() == 16
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 32 {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// Every device, by id.
#[derive(Clone, Debug)]
pub struct Fleet {
    devices: Arc<[Device]>,
    by_id: Arc<HashMap<String, usize>>,
}

impl Fleet {
    /// A fleet of `size` devices (at most [`MAX_DEVICES`]): of every ten, five gates, three
    /// kiosks and two payment stations, spread over the areas in turn. Device `i` (from 1)
    /// is `{kind}-{i:04}`.
    pub fn new(size: usize) -> Self {
        let size = size.min(MAX_DEVICES);
        let devices: Arc<[Device]> = (1..=size).map(Self::layout).collect();
        let by_id = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Self {
            devices,
            by_id: Arc::new(by_id),
        }
    }

    fn layout(n: usize) -> Device {
        let kind = match n % 10 {
            0..=4 => Kind::Gate,
            5..=7 => Kind::Kiosk,
            _ => Kind::Station,
        };
        Device {
            id: format!("{kind}-{n:04}"),
            kind,
            area: AREAS[(n / 10) % AREAS.len()],
        }
    }

    /// The device named `id`, if the fleet has it.
    pub fn get(&self, id: &str) -> Option<&Device> {
        self.position(id).map(|i| &self.devices[i])
    }

    /// Where device `id` is in [`devices`](Self::devices).
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Every device, in id order of creation.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// How many devices there are.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the fleet has no device.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The first device of `kind` in `area`, if any (for demos and tests).
    pub fn first(&self, kind: Kind, area: &str) -> Option<&Device> {
        self.devices
            .iter()
            .find(|d| d.kind == kind && d.area == area)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_fixed_and_mixed() {
        let fleet = Fleet::new(40);
        assert_eq!(fleet.len(), 40);
        let first = &fleet.devices()[0];
        assert_eq!(
            (first.id.as_str(), first.kind, first.area),
            ("gate-0001", Kind::Gate, "T1-short")
        );
        assert_eq!(fleet.get("kiosk-0005").unwrap().kind, Kind::Kiosk);
        assert_eq!(fleet.get("station-0008").unwrap().kind, Kind::Station);
        assert_eq!(fleet.get("gate-0010").unwrap().area, "T1-long");
        assert!(fleet.get("gate-0041").is_none());
        for kind in Kind::ALL {
            assert!(fleet.first(kind, "T1-long").is_some(), "{kind}");
        }
    }

    #[test]
    fn passcodes_are_per_device_and_per_key() {
        let key = FleetKey::new("airport");
        let p = key.passcode("gate-0001");
        assert_eq!(p.len(), 32);
        assert!(key.verify("gate-0001", &p));
        assert!(!key.verify("gate-0002", &p));
        assert!(!FleetKey::new("other").verify("gate-0001", &p));
        assert!(!key.verify("gate-0001", &p[..31]));
        assert!(!key.verify("gate-0001", "zz"));
        assert!(!key.verify("gate-0001", ""));
        assert!(!key.verify("gate-0001", &"é".repeat(16)));
    }
}
