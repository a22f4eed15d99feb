//! [`Fields`]: a record's JSON object with the known fields taken out, so that unknown fields survive a
//! round trip in their original order, and the helpers that take typed fields out of it.

use serde_json::{Map, Value};

use crate::error::FieldError;

/// The fields of one JSON object that its record type does not model, kept in their original order,
/// plus the places where the modelled fields stood so they are written back where they were.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    map: Map<String, Value>,
    taken: Vec<String>,
}

impl Fields {
    /// Wraps a JSON object; anything else is an error.
    pub fn from_value(value: Value) -> Result<Self, FieldError> {
        match value {
            Value::Object(map) => Ok(Fields { map, taken: Vec::new() }),
            other => Err(FieldError::record(format!("expected a JSON object, found {}", type_name(&other)))),
        }
    }

    /// Takes a modelled field out, leaving its place for [`Fields::write`].
    pub fn take(&mut self, key: &str) -> Option<Value> {
        let slot = self.map.get_mut(key)?;
        let v = slot.take();
        self.taken.push(key.to_string());
        Some(v)
    }

    /// True when `key` is present in the object (modelled or not).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// An unknown field's value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        if self.is_taken(key) { None } else { self.map.get(key) }
    }

    /// Sets an unknown field (appended if new, replaced in place if present).
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        self.taken.retain(|k| *k != key);
        self.map.insert(key, value);
    }

    /// Removes an unknown field.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if self.is_taken(key) { None } else { self.map.shift_remove(key) }
    }

    /// The unknown fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.map.iter().filter(|(k, _)| !self.is_taken(k))
    }

    /// Number of unknown fields.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True for a record built in code: nothing read, nothing added.
    pub fn is_pristine(&self) -> bool {
        self.map.is_empty()
    }

    /// True when there are no unknown fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_taken(&self, key: &str) -> bool {
        self.taken.iter().any(|k| k == key)
    }

    /// Builds the object to write: modelled fields (`None` = absent) back in the places they were read
    /// from, new modelled fields first in the given order, unknown fields unchanged.
    pub fn write(&self, known: Vec<(&str, Option<Value>)>) -> Value {
        let mut out = Map::with_capacity(self.map.len() + known.len());
        for (k, v) in &known {
            if !self.is_taken(k)
                && let Some(v) = v
            {
                out.insert((*k).to_string(), v.clone());
            }
        }
        for (k, v) in &self.map {
            if self.is_taken(k) {
                // A field read as null and still unset is written back as null.
                if let Some((_, value)) = known.iter().find(|(name, _)| name == k) {
                    out.insert(k.clone(), value.clone().unwrap_or(Value::Null));
                }
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }
}

/// Two records are equal when their unknown fields are (placeholders of modelled fields aside).
impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// "a string", "an array", … for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Takes a required string field.
pub fn req_string(f: &mut Fields, key: &str) -> Result<String, FieldError> {
    match f.take(key) {
        None => Err(FieldError::field(key, "missing")),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(FieldError::field(key, format!("expected a string, found {}", type_name(&v)))),
    }
}

/// Takes an optional string field (absent or null → `None`).
pub fn opt_string(f: &mut Fields, key: &str) -> Result<Option<String>, FieldError> {
    match f.take(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(FieldError::field(key, format!("expected a string, found {}", type_name(&v)))),
    }
}

/// Takes an optional non-negative integer field.
pub fn opt_u64(f: &mut Fields, key: &str) -> Result<Option<u64>, FieldError> {
    match f.take(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| FieldError::field(key, format!("expected a non-negative integer, found {v}"))),
    }
}

/// Takes an optional boolean field.
pub fn opt_bool(f: &mut Fields, key: &str) -> Result<Option<bool>, FieldError> {
    match f.take(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(v) => Err(FieldError::field(key, format!("expected true or false, found {}", type_name(&v)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn write_keeps_places_and_order() {
        let mut f = Fields::from_value(json!({"a": 1, "text": "x", "b": 2})).unwrap();
        assert_eq!(f.take("text"), Some(json!("x")));
        assert_eq!(f.get("text"), None);
        assert_eq!(f.len(), 2);
        let v = f.write(vec![("id", Some(json!(9))), ("text", Some(json!("y")))]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"id":9,"a":1,"text":"y","b":2}"#);
    }

    #[test]
    fn insert_and_remove_unknown_fields() {
        let mut f = Fields::from_value(json!({"a": 1})).unwrap();
        f.insert("c", json!(3));
        assert_eq!(f.remove("a"), Some(json!(1)));
        assert_eq!(serde_json::to_string(&f.write(vec![])).unwrap(), r#"{"c":3}"#);
        assert!(Fields::from_value(json!([1])).is_err());
    }
}
