//! A CloudTrail record shared by the alerts it raises, rendered once for all of them.
//!
//! One record often matches several rules (a root sign-in trips the root-activity rule,
//! a CIS alarm and SigmaHQ's root-usage rule). Its alerts hold one [`SharedRecord`], so
//! the record is not copied per alert, and its two renderings (the compact JSON the
//! JSON alert carries and the indented text of the email body) are made on first use and
//! reused.

use std::ops::Deref;
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A record and its renderings, made on first use.
#[derive(Debug, Clone, Default)]
pub struct SharedRecord {
    value: Value,
    compact: OnceLock<Box<RawValue>>,
    pretty: OnceLock<String>,
}

impl SharedRecord {
    /// Wraps a record; nothing is rendered yet.
    pub fn new(value: Value) -> SharedRecord {
        SharedRecord {
            value,
            compact: OnceLock::new(),
            pretty: OnceLock::new(),
        }
    }

    /// The record.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The record as compact JSON.
    pub fn compact(&self) -> &RawValue {
        self.compact.get_or_init(|| {
            // Serialising a `Value` cannot fail; `null` would be the fallback.
            serde_json::value::to_raw_value(&self.value)
                .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null"))
        })
    }

    /// The record as indented JSON, for people.
    pub fn pretty(&self) -> &str {
        self.pretty
            .get_or_init(|| serde_json::to_string_pretty(&self.value).unwrap_or_default())
    }
}

impl Deref for SharedRecord {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

impl PartialEq for SharedRecord {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl PartialEq<Value> for SharedRecord {
    fn eq(&self, other: &Value) -> bool {
        self.value == *other
    }
}

impl Serialize for SharedRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.compact().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_as_the_value_would_and_once() {
        let value = json!({"eventName": "StopLogging", "n": 1.5, "s": "a\"b\u{e9}"});
        let shared = SharedRecord::new(value.clone());
        assert_eq!(serde_json::to_string(&shared).unwrap(), value.to_string());
        assert_eq!(
            shared.pretty(),
            serde_json::to_string_pretty(&value).unwrap()
        );
        assert_eq!(serde_json::to_value(&shared).unwrap(), value);
        assert_eq!(shared, value);
        assert_eq!(shared["eventName"], "StopLogging");
    }
}
