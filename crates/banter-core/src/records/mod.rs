//! The JSONL record types of `docs/formats.md`: [`Doc`] (banter-scrape), [`Message`] (banter-whatsapp),
//! [`Sample`] (every training example) and [`Block`] (banter-tokenize).
//!
//! Records are parsed by hand from a [`serde_json::Value`] so that every error names its field
//! (`messages[2].role`). Fields a record type does not know are kept, in their original order, and
//! written back unchanged: a read → write round trip never loses or reorders anything.

mod fields;
mod preference;
mod sample;

use serde_json::Value;

pub use fields::Fields;
pub use preference::Preference;
pub use sample::{InputKey, OutputKey, Role, Sample, SampleBody, Turn};

use crate::error::FieldError;
use fields::{opt_bool, opt_string, opt_u64, req_string};

/// A record that can be read from and written to one JSONL line.
pub trait Record: Sized {
    /// Parses a record from a JSON value, naming the field in any error.
    fn from_value(value: Value) -> Result<Self, FieldError>;
    /// The JSON value to write, unknown fields included in their original order.
    fn to_value(&self) -> Value;
}

impl Record for Value {
    fn from_value(value: Value) -> Result<Self, FieldError> {
        Ok(value)
    }
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// Implements `Serialize` and `Deserialize` through [`Record`].
macro_rules! serde_via_record {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                crate::records::Record::to_value(self).serialize(s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                <$t as crate::records::Record>::from_value(v).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_via_record;

/// A web page's text, as banter-scrape writes it: `{"url","title","text","lang","fetched_at","status"}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Doc {
    /// The page's address after redirects.
    pub url: Option<String>,
    /// The page's title.
    pub title: Option<String>,
    /// The extracted main text.
    pub text: String,
    /// Language from `<html lang>` (BCP 47), when the page says.
    pub lang: Option<String>,
    /// When it was fetched, RFC 3339.
    pub fetched_at: Option<String>,
    /// HTTP status.
    pub status: Option<u64>,
    /// Unknown fields, kept in order.
    pub fields: Fields,
}

impl Record for Doc {
    fn from_value(value: Value) -> Result<Self, FieldError> {
        let mut fields = Fields::from_value(value)?;
        Ok(Doc {
            text: req_string(&mut fields, "text")?,
            url: opt_string(&mut fields, "url")?,
            title: opt_string(&mut fields, "title")?,
            lang: opt_string(&mut fields, "lang")?,
            fetched_at: opt_string(&mut fields, "fetched_at")?,
            status: opt_u64(&mut fields, "status")?,
            fields,
        })
    }

    fn to_value(&self) -> Value {
        let s = |v: &Option<String>| v.clone().map(Value::String);
        self.fields.write(vec![
            ("url", s(&self.url)),
            ("title", s(&self.title)),
            ("text", Some(Value::String(self.text.clone()))),
            ("lang", s(&self.lang)),
            ("fetched_at", s(&self.fetched_at)),
            ("status", self.status.map(Value::from)),
        ])
    }
}
serde_via_record!(Doc);

/// What a chat message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageKind {
    /// An ordinary text message.
    #[default]
    Text,
    /// A photo, video, document, … (attached or omitted from the export).
    Media,
    /// "This message was deleted".
    Deleted,
    /// A line with no author: joins, leaves, subject changes, encryption notices.
    System,
}

impl MessageKind {
    /// The name used in JSONL.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Media => "media",
            MessageKind::Deleted => "deleted",
            MessageKind::System => "system",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => MessageKind::Text,
            "media" => MessageKind::Media,
            "deleted" => MessageKind::Deleted,
            "system" => MessageKind::System,
            _ => return None,
        })
    }
}

/// One message of a chat export, as banter-whatsapp writes it:
/// `{"chat","ts","author","text","kind","edited"?,"attachment"?}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// The chat's name (the export's file name or group subject).
    pub chat: String,
    /// Local time of the message, ISO 8601 without a zone (exports carry none).
    pub ts: String,
    /// Who wrote it, exactly as the export spells it; `None` for system lines.
    pub author: Option<String>,
    /// The text, lines joined with `\n`, kept exactly as exported.
    pub text: String,
    /// What kind of message it is.
    pub kind: MessageKind,
    /// True when the export marked the message as edited.
    pub edited: Option<bool>,
    /// The attachment's file name for media messages, when the export names it.
    pub attachment: Option<String>,
    /// Unknown fields, kept in order.
    pub fields: Fields,
}

impl Record for Message {
    fn from_value(value: Value) -> Result<Self, FieldError> {
        let mut fields = Fields::from_value(value)?;
        let kind = match opt_string(&mut fields, "kind")? {
            None => MessageKind::Text,
            Some(k) => MessageKind::parse(&k).ok_or_else(|| {
                FieldError::field("kind", format!("unknown kind \"{k}\" (expected text, media, deleted or system)"))
            })?,
        };
        Ok(Message {
            chat: opt_string(&mut fields, "chat")?.unwrap_or_default(),
            ts: req_string(&mut fields, "ts")?,
            author: opt_string(&mut fields, "author")?,
            text: req_string(&mut fields, "text")?,
            kind,
            edited: opt_bool(&mut fields, "edited")?,
            attachment: opt_string(&mut fields, "attachment")?,
            fields,
        })
    }

    fn to_value(&self) -> Value {
        self.fields.write(vec![
            ("chat", Some(Value::String(self.chat.clone()))),
            ("ts", Some(Value::String(self.ts.clone()))),
            ("author", Some(self.author.clone().map_or(Value::Null, Value::String))),
            ("text", Some(Value::String(self.text.clone()))),
            ("kind", Some(Value::String(self.kind.as_str().into()))),
            ("edited", self.edited.map(Value::Bool)),
            ("attachment", self.attachment.clone().map(Value::String)),
        ])
    }
}
impl serde::Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.fields.is_pristine() {
            // Fast path for freshly built messages (banter-whatsapp writes millions): no Value tree.
            #[derive(serde::Serialize)]
            struct Plain<'a> {
                chat: &'a str,
                ts: &'a str,
                author: Option<&'a str>,
                text: &'a str,
                kind: &'static str,
                #[serde(skip_serializing_if = "Option::is_none")]
                edited: Option<bool>,
                #[serde(skip_serializing_if = "Option::is_none")]
                attachment: Option<&'a str>,
            }
            return Plain {
                chat: &self.chat,
                ts: &self.ts,
                author: self.author.as_deref(),
                text: &self.text,
                kind: self.kind.as_str(),
                edited: self.edited,
                attachment: self.attachment.as_deref(),
            }
            .serialize(s);
        }
        self.to_value().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Message::from_value(v).map_err(serde::de::Error::custom)
    }
}

/// A block of token ids with their labels (`-100` where no loss is taken), as banter-tokenize writes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// Target ids, `-100` for tokens that carry no loss; same length as `input_ids`.
    pub labels: Vec<i64>,
    /// Unknown fields, kept in order.
    pub fields: Fields,
}

/// The label of a token that carries no loss.
pub const IGNORE_INDEX: i64 = -100;

impl Record for Block {
    fn from_value(value: Value) -> Result<Self, FieldError> {
        let mut fields = Fields::from_value(value)?;
        let ids = fields.take("input_ids").ok_or_else(|| FieldError::field("input_ids", "missing"))?;
        let input_ids = int_array(ids, "input_ids", |n| u32::try_from(n).ok(), "a token id (0 ≤ id < 2^32)")?;
        let labels = match fields.take("labels") {
            // Without labels every token carries loss, as in Hugging Face's `labels = input_ids`.
            None => input_ids.iter().map(|&i| i64::from(i)).collect(),
            Some(v) => int_array(v, "labels", |n| (n >= IGNORE_INDEX).then_some(n), "a token id or -100")?,
        };
        if labels.len() != input_ids.len() {
            return Err(FieldError::field(
                "labels",
                format!("has {} entries but input_ids has {}", labels.len(), input_ids.len()),
            ));
        }
        Ok(Block { input_ids, labels, fields })
    }

    fn to_value(&self) -> Value {
        self.fields.write(vec![
            ("input_ids", Some(Value::from(self.input_ids.clone()))),
            ("labels", Some(Value::from(self.labels.clone()))),
        ])
    }
}
serde_via_record!(Block);

fn int_array<T>(v: Value, field: &str, conv: impl Fn(i64) -> Option<T>, what: &str) -> Result<Vec<T>, FieldError> {
    let Value::Array(items) = v else {
        return Err(FieldError::field(field, format!("expected an array, found {}", fields::type_name(&v))));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_i64()
                .and_then(&conv)
                .ok_or_else(|| FieldError::field(format!("{field}[{i}]"), format!("expected {what}, found {x}")))
        })
        .collect()
}

/// Parses one JSONL line, with errors in banter's wording (`invalid JSON at column 5: …`).
pub fn parse_json(text: &str) -> Result<Value, FieldError> {
    serde_json::from_str(text).map_err(|e| FieldError::record(json_error_message(&e)))
}

/// serde_json's message without its "at line L column C" suffix, with the column restated.
pub(crate) fn json_error_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    format!("invalid JSON at column {}: {msg}", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T: Record>(line: &str) -> String {
        let v: Value = serde_json::from_str(line).unwrap();
        serde_json::to_string(&T::from_value(v).unwrap().to_value()).unwrap()
    }

    #[test]
    fn doc_round_trips_with_unknown_fields_in_order() {
        let line = r#"{"crawl_id":7,"url":"https://x.org/","title":"T","text":"body","lang":"fa","fetched_at":"2026-01-01T00:00:00Z","status":200,"z":[1,{"a":null}]}"#;
        assert_eq!(round_trip::<Doc>(line), line);
        let d = Doc::from_value(serde_json::from_str(line).unwrap()).unwrap();
        assert_eq!(d.status, Some(200));
        assert_eq!(d.fields.get("crawl_id"), Some(&json!(7)));
    }

    #[test]
    fn doc_needs_text() {
        let e = Doc::from_value(json!({"url": "u"})).unwrap_err();
        assert_eq!(e.to_string(), "field \"text\": missing");
        let e = Doc::from_value(json!({"text": 3})).unwrap_err();
        assert_eq!(e.to_string(), "field \"text\": expected a string, found a number");
    }

    #[test]
    fn message_round_trips_and_keeps_null_author() {
        let line = r#"{"chat":"family","ts":"2023-02-09T21:05:00","author":null,"text":"Ali added Sara","kind":"system","line":3}"#;
        assert_eq!(round_trip::<Message>(line), line);
        let m = Message::from_value(serde_json::from_str(line).unwrap()).unwrap();
        assert_eq!(m.author, None);
        assert_eq!(m.kind, MessageKind::System);
        let line = r#"{"chat":"c","ts":"t","author":"~ Sara","text":"","kind":"media","attachment":"IMG-1.jpg","edited":true}"#;
        assert_eq!(round_trip::<Message>(line), line);
        let e = Message::from_value(json!({"ts":"t","text":"x","kind":"sticker"})).unwrap_err();
        assert!(e.to_string().starts_with("field \"kind\": unknown kind \"sticker\""), "{e}");
    }

    #[test]
    fn built_messages_serialize_the_same_fast_or_not() {
        let m = Message {
            chat: "c".into(),
            ts: "2023-01-01T00:00:00".into(),
            author: None,
            text: "x\ny".into(),
            kind: MessageKind::System,
            edited: Some(true),
            attachment: Some("a.jpg".into()),
            fields: Fields::default(),
        };
        assert_eq!(serde_json::to_string(&m).unwrap(), serde_json::to_string(&m.to_value()).unwrap());
        let mut flagged = m.clone();
        flagged.fields.insert("out_of_order", Value::Bool(true));
        assert!(serde_json::to_string(&flagged).unwrap().ends_with(r#""out_of_order":true}"#));
    }

    #[test]
    fn block_checks_lengths_and_values() {
        let line = r#"{"input_ids":[1,2,3],"labels":[-100,2,3],"source":"a"}"#;
        assert_eq!(round_trip::<Block>(line), line);
        let b = Block::from_value(json!({"input_ids": [5, 6]})).unwrap();
        assert_eq!(b.labels, vec![5, 6]);
        let e = Block::from_value(json!({"input_ids": [1, 2], "labels": [1]})).unwrap_err();
        assert_eq!(e.to_string(), "field \"labels\": has 1 entries but input_ids has 2");
        let e = Block::from_value(json!({"input_ids": [1, -2]})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("input_ids[1]"));
        let e = Block::from_value(json!({"input_ids": [1], "labels": [-101]})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("labels[0]"));
        let e = Block::from_value(json!({"labels": [1]})).unwrap_err();
        assert_eq!(e.to_string(), "field \"input_ids\": missing");
    }

    #[test]
    fn serde_goes_through_record() {
        let b: Block = serde_json::from_str(r#"{"input_ids":[1],"labels":[1]}"#).unwrap();
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"input_ids":[1],"labels":[1]}"#);
        let e = serde_json::from_str::<Block>(r#"{"input_ids":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("input_ids"));
    }
}
