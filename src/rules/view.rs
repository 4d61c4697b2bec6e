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
    json: JsonEvent<'a>,
}

impl<'a> RecordView<'a> {
    pub(crate) fn new(record: &'a Value) -> Self {
        RecordView {
            json: JsonEvent::borrow(record),
        }
    }
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
        self.json.get_field(path).map(objects_as_text)
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
