//! The announcement datagram: a small JSON object an agent multicasts on its interface.
//!
//! ```json
//! {"openmosix":"discovery","v":1,"kind":"here","id":2780,"interval_ms":1000,"hold_ms":4000}
//! ```
//!
//! It says only "an agent with this id is at the datagram's source address": no key, no
//! command, no destination. The address is never taken from the payload, so a stranger
//! can only announce an address it sends from; what the workstation does with a node it
//! hears is open an SSH connection with checked host keys, as for any configured node.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::NodeId;

/// The value of the `openmosix` field every announcement carries.
pub const MAGIC: &str = "discovery";
/// The version of the announcement format.
pub const VERSION: u32 = 1;
/// The largest datagram read; anything longer is not an announcement.
pub const MAX_DATAGRAM: usize = 512;

/// Shortest and longest hold a listener accepts (a sender asking for more is capped).
const HOLD_MIN: Duration = Duration::from_millis(500);
const HOLD_MAX: Duration = Duration::from_secs(60);

/// What an announcement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// "I am here" (sent every interval).
    Here,
    /// "I am leaving" (sent once when the daemon stops).
    Bye,
}

/// One announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// Always [`MAGIC`].
    pub openmosix: MagicField,
    /// Always [`VERSION`] when sent by this program.
    pub v: u32,
    /// Here or bye.
    pub kind: Kind,
    /// The sender's openMosix id.
    pub id: NodeId,
    /// How often the sender announces, in milliseconds.
    pub interval_ms: u64,
    /// How long listeners keep the sender without hearing it again, in milliseconds.
    pub hold_ms: u64,
}

/// The `openmosix` field: serializes as [`MAGIC`] and refuses anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MagicField;

impl Serialize for MagicField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MAGIC)
    }
}

impl<'de> Deserialize<'de> for MagicField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == MAGIC {
            Ok(MagicField)
        } else {
            Err(serde::de::Error::custom(format!(
                "the openmosix field is {s:?}, not {MAGIC:?}"
            )))
        }
    }
}

impl Announcement {
    /// An announcement of `kind` for node `id`.
    pub fn new(kind: Kind, id: NodeId, interval: Duration, hold: Duration) -> Announcement {
        Announcement {
            openmosix: MagicField,
            v: VERSION,
            kind,
            id,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            hold_ms: u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The datagram's bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a datagram; says in words why it is not an announcement of this format.
    /// Newer versions are read as long as the fields of version 1 are there.
    pub fn decode(bytes: &[u8]) -> Result<Announcement, String> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(format!(
                "{} bytes, longer than an announcement ({MAX_DATAGRAM})",
                bytes.len()
            ));
        }
        let a: Announcement =
            serde_json::from_slice(bytes).map_err(|e| format!("not an announcement: {e}"))?;
        if a.v < VERSION {
            return Err(format!("announcement version {} is unknown", a.v));
        }
        if !(1..=65535).contains(&a.id) {
            return Err(format!(
                "node id {} is out of range (node ids are 1 to 65535)",
                a.id
            ));
        }
        if a.interval_ms == 0 {
            return Err("interval_ms is 0".to_string());
        }
        Ok(a)
    }

    /// How long a listener keeps the sender: its `hold_ms`, within 0.5 s to 60 s.
    pub fn hold(&self) -> Duration {
        Duration::from_millis(self.hold_ms).clamp(HOLD_MIN, HOLD_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Announcement::new(
            Kind::Here,
            2780,
            Duration::from_secs(1),
            Duration::from_secs(4),
        );
        let bytes = a.encode();
        assert!(bytes.len() < MAX_DATAGRAM);
        assert_eq!(Announcement::decode(&bytes), Ok(a));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""openmosix":"discovery""#), "{text}");
        assert!(text.contains(r#""kind":"here""#), "{text}");
    }

    #[test]
    fn refuses_foreign_and_malformed() {
        for bad in [
            &b""[..],
            b"\xff\xfe garbage",
            b"{}",
            br#"{"openmosix":"other","v":1,"kind":"here","id":1,"interval_ms":1,"hold_ms":1}"#,
            br#"{"openmosix":"discovery","v":0,"kind":"here","id":1,"interval_ms":1,"hold_ms":1}"#,
            br#"{"openmosix":"discovery","v":1,"kind":"here","id":0,"interval_ms":1,"hold_ms":1}"#,
            br#"{"openmosix":"discovery","v":1,"kind":"here","id":70000,"interval_ms":1,"hold_ms":1}"#,
            br#"{"openmosix":"discovery","v":1,"kind":"run","id":1,"interval_ms":1,"hold_ms":1}"#,
            br#"{"openmosix":"discovery","v":1,"kind":"here","id":1,"interval_ms":0,"hold_ms":1}"#,
        ] {
            assert!(Announcement::decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = vec![b' '; MAX_DATAGRAM + 1];
        assert!(Announcement::decode(&long).unwrap_err().contains("longer"));
    }

    #[test]
    fn newer_version_and_extra_fields_are_read() {
        let a = Announcement::decode(
            br#"{"openmosix":"discovery","v":2,"kind":"bye","id":7,"interval_ms":1000,"hold_ms":999999999,"x":1}"#,
        )
        .unwrap();
        assert_eq!(a.kind, Kind::Bye);
        assert_eq!(a.hold(), HOLD_MAX);
    }
}
