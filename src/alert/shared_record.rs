//! A CloudTrail record shared by the alerts it raises, rendered once for all of them.
//!
//! One record often matches several rules (a root sign-in trips the root-activity rule,
//! a CIS alarm and SigmaHQ's root-usage rule). Its alerts hold one [`SharedRecord`], so
//! the record is not copied per alert. Its compact JSON (what the JSON alert carries) is
//! kept for the other alerts when the record is shared, and made afresh when one alert
//! holds it. The indented text of the email body is made afresh each time: kept for
//! every alerting record of a 1 MB batch until it is published, the two renderings cost
//! the function 8 MB of its memory.

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A record and its renderings, made on first use.
#[derive(Debug, Clone, Default)]
pub struct SharedRecord {
    value: Value,
    compact: OnceLock<Box<RawValue>>,
}

impl SharedRecord {
    /// Wraps a record; nothing is rendered yet.
    pub fn new(value: Value) -> SharedRecord {
        SharedRecord {
            value,
            compact: OnceLock::new(),
        }
    }

    /// The record.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The record as compact JSON (kept while other alerts share the record).
    pub fn compact(self: &Arc<Self>) -> Cow<'_, RawValue> {
        let render = || {
            // Serialising a `Value` cannot fail; `null` would be the fallback.
            serde_json::value::to_raw_value(&self.value)
                .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null"))
        };
        if Arc::strong_count(self) > 1 {
            Cow::Borrowed(self.compact.get_or_init(render))
        } else {
            Cow::Owned(render())
        }
    }

    /// The record as indented JSON, for people. Made afresh each time: kept for every
    /// alerting record of a 1 MB batch until it is published, it cost the function 8 MB.
    pub fn pretty(&self) -> String {
        serde_json::to_string_pretty(&self.value).unwrap_or_default()
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

/// The record itself (an alert serialises its shared record through
/// [`SharedRecord::compact`]).
impl Serialize for SharedRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_as_the_value_would_and_keeps_the_json_only_while_shared() {
        let value = json!({"eventName": "StopLogging", "n": 1.5, "s": "a\"b\u{e9}"});
        let alone = Arc::new(SharedRecord::new(value.clone()));
        assert_eq!(alone.compact().get(), value.to_string());
        assert!(
            matches!(alone.compact(), Cow::Owned(_)),
            "one holder: not kept"
        );
        assert_eq!(
            alone.pretty(),
            serde_json::to_string_pretty(&value).unwrap()
        );
        let other = alone.clone();
        assert!(matches!(other.compact(), Cow::Borrowed(_)), "shared: kept");
        assert!(std::ptr::eq(&*alone.compact(), &*other.compact()));
        assert_eq!(other.compact().get(), value.to_string());
        assert_eq!(serde_json::to_string(&*alone).unwrap(), value.to_string());
        assert_eq!(*alone, value);
        assert_eq!(alone["eventName"], "StopLogging");
    }
}
