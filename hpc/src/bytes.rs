//! Text that may not be UTF-8 (command lines, paths), carried in JSON the way ripgrep's
//! JSON output does: `{"text": "..."}` when it is UTF-8, `{"bytes": "<base64>"}` when not.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that are shown as text when they are UTF-8.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct BytesOrText(pub Vec<u8>);

impl BytesOrText {
    /// The bytes as text, with invalid sequences replaced (for display only).
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for BytesOrText {
    fn from(s: &str) -> Self {
        BytesOrText(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for BytesOrText {
    fn from(v: Vec<u8>) -> Self {
        BytesOrText(v)
    }
}

impl fmt::Debug for BytesOrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.lossy())
    }
}

impl fmt::Display for BytesOrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lossy())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wire {
    Text(String),
    Bytes(String),
}

impl Serialize for BytesOrText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(t) => Wire::Text(t.to_owned()).serialize(s),
            Err(_) => Wire::Bytes(STANDARD.encode(&self.0)).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BytesOrText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Wire::deserialize(d)? {
            Wire::Text(t) => Ok(BytesOrText(t.into_bytes())),
            Wire::Bytes(b) => STANDARD
                .decode(b)
                .map(BytesOrText)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_bytes_round_trip() {
        let t = BytesOrText::from("sleep 100");
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, r#"{"text":"sleep 100"}"#);
        assert_eq!(serde_json::from_str::<BytesOrText>(&j).unwrap(), t);
        let b = BytesOrText(vec![0xff, b'a']);
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(j, r#"{"bytes":"/2E="}"#);
        assert_eq!(serde_json::from_str::<BytesOrText>(&j).unwrap(), b);
    }
}
