//! OTLP attribute values (`AnyValue`) as JSON for API answers.

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays/kvlists rendered; deeper values become a
/// marker string. Decoding already bounds recursion; this bounds our output.
const NESTING_DEPTH_MAX: usize = 16;

/// Marker for values nested deeper than [`NESTING_DEPTH_MAX`].
const TOO_DEEP: &str = "<nested too deep>";

/// Attributes as a JSON object. A repeated key keeps its last value (OTLP
/// forbids repeats; this makes the answer deterministic anyway).
pub fn attributes_json(attributes: &[KeyValue]) -> Map<String, Value> {
    attributes_at(attributes, 0)
}

/// One value as JSON: strings, ints, doubles and bools as themselves, arrays
/// as arrays, kvlists as objects, bytes as lowercase hex. Doubles that JSON
/// cannot hold (NaN, ±inf) become their text (`"NaN"`, `"inf"`).
pub fn any_value_json(value: &AnyValue) -> Value {
    value_at(value, 0)
}

/// A log body as text: strings as they are, anything else as JSON text,
/// absent bodies as the empty string.
pub fn body_text(body: Option<&AnyValue>) -> String {
    match body.and_then(|b| b.value.as_ref()) {
        None => String::new(),
        Some(Any::StringValue(text)) => text.clone(),
        Some(_) => body.map(|b| any_value_json(b).to_string()).unwrap_or_default(),
    }
}

fn attributes_at(attributes: &[KeyValue], depth: usize) -> Map<String, Value> {
    attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().map_or(Value::Null, |v| value_at(v, depth));
            (kv.key.clone(), value)
        })
        .collect()
}

fn value_at(value: &AnyValue, depth: usize) -> Value {
    let Some(inner) = value.value.as_ref() else {
        return Value::Null;
    };
    match inner {
        Any::StringValue(text) => Value::String(text.clone()),
        Any::BoolValue(flag) => Value::Bool(*flag),
        Any::IntValue(int) => Value::Number((*int).into()),
        Any::DoubleValue(double) => Number::from_f64(*double).map_or_else(|| Value::String(double.to_string()), Value::Number),
        Any::BytesValue(bytes) => Value::String(hex::encode(bytes)),
        // Indexes into a dictionary only the profiles signal carries.
        Any::StringValueStrindex(_) => Value::Null,
        Any::ArrayValue(_) | Any::KvlistValue(_) if depth >= NESTING_DEPTH_MAX => Value::String(TOO_DEEP.to_owned()),
        Any::ArrayValue(array) => Value::Array(array.values.iter().map(|v| value_at(v, depth + 1)).collect()),
        Any::KvlistValue(list) => Value::Object(attributes_at(&list.values, depth + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use serde_json::json;

    fn any(value: Any) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn kv(key: &str, value: Any) -> KeyValue {
        KeyValue { key: key.to_owned(), value: Some(any(value)), ..Default::default() }
    }

    #[test]
    fn every_kind_maps_to_json() {
        let nested = KeyValueList { values: vec![kv("inner", Any::IntValue(1))] };
        let attrs = vec![
            kv("s", Any::StringValue("x".into())),
            kv("b", Any::BoolValue(true)),
            kv("i", Any::IntValue(-3)),
            kv("d", Any::DoubleValue(0.5)),
            kv("nan", Any::DoubleValue(f64::NAN)),
            kv("bytes", Any::BytesValue(vec![0xde, 0xad])),
            kv("arr", Any::ArrayValue(ArrayValue { values: vec![any(Any::IntValue(1)), any(Any::StringValue("two".into()))] })),
            kv("kv", Any::KvlistValue(nested)),
            KeyValue { key: "none".into(), value: None, ..Default::default() },
        ];
        let expected = json!({
            "s": "x", "b": true, "i": -3, "d": 0.5, "nan": "NaN", "bytes": "dead",
            "arr": [1, "two"], "kv": {"inner": 1}, "none": null
        });
        assert_eq!(Value::Object(attributes_json(&attrs)), expected);
    }

    #[test]
    fn deep_nesting_is_cut_off() {
        let mut value = any(Any::IntValue(7));
        for _ in 0..(NESTING_DEPTH_MAX + 5) {
            value = any(Any::ArrayValue(ArrayValue { values: vec![value] }));
        }
        let mut json = any_value_json(&value);
        for _ in 0..NESTING_DEPTH_MAX {
            json = json[0].take();
        }
        assert_eq!(json, Value::String(TOO_DEEP.to_owned()));
    }

    #[test]
    fn bodies_render_as_text() {
        assert_eq!(body_text(None), "");
        assert_eq!(body_text(Some(&any(Any::StringValue("plain".into())))), "plain");
        let map = any(Any::KvlistValue(KeyValueList { values: vec![kv("k", Any::BoolValue(false))] }));
        assert_eq!(body_text(Some(&map)), r#"{"k":false}"#);
    }
}
