//! The view of a CloudTrail record that rsigma evaluates.
//!
//! It is rsigma's own JSON view with one difference that CloudTrail needs: a field whose
//! value is a JSON object (`requestParameters`, `responseElements`, ...) reads as that
//! object's compact JSON text, so `requestParameters|contains: 'Suspended'` matches the
//! way Sigma authors expect (rsigma alone matches nothing there). Nested paths such as
//! `requestParameters.bucketName` are unaffected.

use std::borrow::Cow;

use rsigma_eval::event::{Event, EventValue, JsonEvent};
use serde_json::Value;

/// A borrowed CloudTrail record as rsigma sees it.
pub(crate) struct RecordView<'a> {
    record: &'a Value,
    json: JsonEvent<'a>,
}

impl<'a> RecordView<'a> {
    pub(crate) fn new(record: &'a Value) -> Self {
        RecordView {
            record,
            json: JsonEvent::borrow(record),
        }
    }
}

/// The field at a plain dotted path (`requestParameters.bucketName`) read from objects
/// alone, as rsigma reads it: `Some(found)` (`Some(None)`: no such field), or `None`
/// when the read is not that simple (an index or an escape in the path, an empty
/// segment, an array on the way), which rsigma's own reader then takes. It spares
/// rsigma parsing the path into steps on every read.
fn plain_path_field<'a>(record: &'a Value, path: &str) -> Option<Option<&'a Value>> {
    let object = record.as_object()?;
    if let Some(value) = object.get(path) {
        return Some(Some(value));
    }
    if path.contains(['[', '\\']) {
        return None;
    }
    // A path without a dot is a top-level key, looked up above.
    if !path.contains('.') {
        return Some(None);
    }
    let mut current = record;
    for segment in path.split('.') {
        if segment.is_empty() {
            return None;
        }
        current = match current {
            Value::Object(map) => match map.get(segment) {
                Some(next) => next,
                None => return Some(None),
            },
            Value::Array(_) => return None,
            _ => return Some(None),
        };
    }
    Some(Some(current))
}

/// Replaces objects (top level or inside arrays) with their JSON text.
fn objects_as_text(value: EventValue<'_>) -> EventValue<'_> {
    match value {
        EventValue::Map(_) => EventValue::Str(Cow::Owned(to_json(&value).to_string())),
        EventValue::Array(items) => {
            EventValue::Array(items.into_iter().map(objects_as_text).collect())
        }
        other => other,
    }
}

fn to_json(value: &EventValue<'_>) -> Value {
    match value {
        EventValue::Str(s) => Value::String(s.to_string()),
        EventValue::Int(n) => Value::from(*n),
        EventValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        EventValue::Bool(b) => Value::Bool(*b),
        EventValue::Null => Value::Null,
        EventValue::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        EventValue::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect(),
        ),
    }
}

impl Event for RecordView<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let value = match plain_path_field(self.record, path) {
            Some(found) => found.map(EventValue::from),
            None => self.json.get_field(path),
        };
        value.map(objects_as_text)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.json.any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.json.all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.json.visit_string_values(visit)
    }

    fn to_json(&self) -> Value {
        self.json.to_json()
    }

    fn field_keys(&self) -> Vec<Cow<'_, str>> {
        self.json.field_keys()
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        self.json.top_level_keys()
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        self.json.visit_top_level_keys(visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(record: &Value, path: &str) -> Option<String> {
        let view = RecordView::new(record);
        view.get_field(path)
            .and_then(|v| v.as_str().map(|s| s.into_owned()))
    }

    #[test]
    fn object_fields_read_as_json_text() {
        let record = json!({"requestParameters": {"status": "Suspended", "n": 2}});
        assert_eq!(
            field(&record, "requestParameters").as_deref(),
            Some(r#"{"status":"Suspended","n":2}"#),
            "the record's own key order"
        );
    }

    #[test]
    fn nested_paths_and_scalars_are_unchanged() {
        let record = json!({"requestParameters": {"bucketName": "logs"}, "eventName": "X"});
        assert_eq!(
            field(&record, "requestParameters.bucketName").as_deref(),
            Some("logs")
        );
        assert_eq!(field(&record, "eventName").as_deref(), Some("X"));
        assert_eq!(field(&record, "missing"), None);
    }

    /// The plain-path read gives what rsigma's reader gives, on records of every shape
    /// the paths cross (objects, arrays, scalars, nulls, dotted keys).
    #[test]
    fn plain_paths_read_as_rsigma_reads_them() {
        let records = [
            json!({"a": {"b": {"c": 1}, "n": null, "s": "x", "arr": [{"c": 2}, {"c": 3}]},
                   "a.b": "literal", "t": true, "e": {}, "z": [1, [2]]}),
            json!({"requestParameters": {"bucketName": "logs", "policy": {"Statement": []}},
                   "resources": [{"ARN": "r1"}, {"ARN": "r2", "type": "t"}], "eventName": "X"}),
            json!(["not", "an", "object"]),
            json!("text"),
        ];
        let paths = [
            "a",
            "a.b",
            "a.b.c",
            "a.b.c.d",
            "a.n",
            "a.n.x",
            "a.s",
            "a.s.x",
            "a.arr",
            "a.arr.c",
            "a.arr[0].c",
            "a.missing",
            "missing.x",
            "t",
            "t.x",
            "e",
            "e.x",
            "z",
            "z.x",
            ".a",
            "a.",
            "a..b",
            "a\\.b",
            "requestParameters",
            "requestParameters.bucketName",
            "requestParameters.policy.Statement",
            "resources.ARN",
            "resources.type",
            "eventName",
            "eventName.x",
            "",
        ];
        for record in &records {
            let view = RecordView::new(record);
            for path in paths {
                assert_eq!(
                    view.get_field(path),
                    view.json.get_field(path).map(objects_as_text),
                    "{path} on {record}"
                );
            }
        }
    }

    /// The same on every fixture record, for every field path a built-in Sigma rule
    /// reads, each also one level deeper and through a missing key.
    #[test]
    fn the_pack_s_paths_read_as_rsigma_reads_them_on_the_fixtures() {
        let mut paths = std::collections::BTreeSet::new();
        for source in crate::rules::builtin_sources() {
            let Ok(collection) = rsigma_parser::parse_sigma_yaml(&source.text) else {
                continue;
            };
            for rule in &collection.rules {
                paths.extend(super::super::prefilter::sigma_field_paths(rule).unwrap_or_default());
            }
        }
        assert!(paths.len() > 50, "{} paths", paths.len());
        let deeper: Vec<String> = paths
            .iter()
            .flat_map(|path| [format!("{path}.x"), format!("missing.{path}")])
            .collect();
        paths.extend(deeper);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut read = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let record: Value = serde_json::from_str(&text).unwrap();
            let view = RecordView::new(&record);
            for path in &paths {
                let found = view.get_field(path);
                assert_eq!(
                    found,
                    view.json.get_field(path).map(objects_as_text),
                    "{path}"
                );
                read += usize::from(found.is_some());
            }
        }
        assert!(read > 100, "only {read} fields found");
    }

    #[test]
    fn objects_inside_arrays_read_as_text() {
        let record = json!({"resources": [{"ARN": "arn:aws:s3:::b"}]});
        let view = RecordView::new(&record);
        let Some(EventValue::Array(items)) = view.get_field("resources") else {
            panic!("expected an array");
        };
        assert_eq!(
            items[0].as_str().as_deref(),
            Some(r#"{"ARN":"arn:aws:s3:::b"}"#)
        );
    }
}
