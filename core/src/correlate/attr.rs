//! Reading values out of OTLP attribute lists (`KeyValue`s).
//!
//! Empty strings never count as a value: every helper here answers `None`
//! for them so that precedence falls through to the next source.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

/// The value of the first attribute named `key`, if it has one.
pub(crate) fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

/// The text of a scalar value: a non-empty string, an integer or a finite
/// double. Booleans, bytes, arrays and maps are not IDs.
pub(crate) fn scalar_text(value: &AnyValue) -> Option<String> {
    match value.value.as_ref()? {
        Value::StringValue(text) if !text.is_empty() => Some(text.clone()),
        Value::IntValue(n) => Some(n.to_string()),
        Value::DoubleValue(x) if x.is_finite() => Some(x.to_string()),
        _ => None,
    }
}

/// Every non-empty string a value holds: the string itself, or the strings
/// of an array (semantic conventions record headers as `string[]`).
pub(crate) fn strings(value: &AnyValue) -> impl Iterator<Item = &str> {
    let (single, array): (Option<&str>, &[AnyValue]) = match value.value.as_ref() {
        Some(Value::StringValue(text)) => (Some(text.as_str()), &[]),
        Some(Value::ArrayValue(array)) => (None, array.values.as_slice()),
        _ => (None, &[]),
    };
    let from_array = array.iter().filter_map(|item| match item.value.as_ref() {
        Some(Value::StringValue(text)) => Some(text.as_str()),
        _ => None,
    });
    single.into_iter().chain(from_array).filter(|text| !text.is_empty())
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Builders of OTLP values for the tests of this module tree.

    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    /// A string value.
    pub fn s(text: &str) -> AnyValue {
        AnyValue { value: Some(Value::StringValue(text.to_owned())) }
    }

    /// An integer value.
    pub fn i(n: i64) -> AnyValue {
        AnyValue { value: Some(Value::IntValue(n)) }
    }

    /// An array of strings.
    pub fn arr(items: &[&str]) -> AnyValue {
        let values = items.iter().map(|t| s(t)).collect();
        AnyValue { value: Some(Value::ArrayValue(ArrayValue { values })) }
    }

    /// A key-value list value.
    pub fn kvlist(items: Vec<KeyValue>) -> AnyValue {
        AnyValue { value: Some(Value::KvlistValue(KeyValueList { values: items })) }
    }

    /// An attribute.
    pub fn kv(key: &str, value: AnyValue) -> KeyValue {
        KeyValue { key: key.to_owned(), value: Some(value), ..Default::default() }
    }

    /// A string attribute.
    pub fn kvs(key: &str, text: &str) -> KeyValue {
        kv(key, s(text))
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn scalar_text_takes_strings_and_numbers_only() {
        assert_eq!(scalar_text(&s("abc")).as_deref(), Some("abc"));
        assert_eq!(scalar_text(&s("")), None);
        assert_eq!(scalar_text(&i(42)).as_deref(), Some("42"));
        let double = AnyValue { value: Some(Value::DoubleValue(7.0)) };
        assert_eq!(scalar_text(&double).as_deref(), Some("7"));
        let nan = AnyValue { value: Some(Value::DoubleValue(f64::NAN)) };
        assert_eq!(scalar_text(&nan), None);
        let boolean = AnyValue { value: Some(Value::BoolValue(true)) };
        assert_eq!(scalar_text(&boolean), None);
        assert_eq!(scalar_text(&AnyValue { value: None }), None);
    }

    #[test]
    fn strings_reads_a_string_or_an_array_and_skips_empty_ones() {
        assert_eq!(strings(&s("a")).collect::<Vec<_>>(), ["a"]);
        assert_eq!(strings(&arr(&["", "b", "c"])).collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(strings(&i(1)).count(), 0);
    }

    #[test]
    fn find_takes_the_first_attribute_with_that_key() {
        let attrs = vec![kvs("a", "1"), kvs("b", "2"), kvs("a", "3")];
        assert_eq!(find(&attrs, "a"), Some(&s("1")));
        assert_eq!(find(&attrs, "c"), None);
    }
}
