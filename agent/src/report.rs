//! Results as MAAS takes them, and the JSON form its status endpoint accepts (ASCII only). The
//! events themselves are sent by the boot's event sink ([`crate::boot::events`]).

use serde_json::Value;

/// JSON with every non-ASCII character escaped (`\u00e9`, surrogate pairs beyond the BMP):
/// MAAS answers 400 to anything else.
pub fn ascii_json(v: &Value) -> String {
    let raw = v.to_string();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// A result as MAAS takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    #[serde(rename = "SUCCESS")]
    Success,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "FAIL")]
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        }
    }

    /// wisp's exit status for a result (cloud-init's): 0 SUCCESS, 2 WARN, 1 FAIL.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Warn => 2,
            Outcome::Fail => 1,
        }
    }

    pub fn worst(self, other: Outcome) -> Outcome {
        use Outcome::*;
        match (self, other) {
            (Fail, _) | (_, Fail) => Fail,
            (Warn, _) | (_, Warn) => Warn,
            _ => Success,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_ascii_with_escapes() {
        let v = json!({"description": "café ☕ 𝄞", "timestamp": 1.5});
        let s = ascii_json(&v);
        assert!(s.is_ascii(), "{s}");
        assert!(s.contains("caf\\u00e9 \\u2615 \\ud834\\udd1e"), "{s}");
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        assert!(back["timestamp"].is_number());
    }

    #[test]
    fn worst_result_wins() {
        use Outcome::*;
        assert_eq!(Success.worst(Warn), Warn);
        assert_eq!(Warn.worst(Fail), Fail);
        assert_eq!(Success.worst(Success), Success);
    }
}
