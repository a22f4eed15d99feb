//! [`Sample`]: one training example, in any of the three shapes of `docs/formats.md`:
//! `{"text"}`, `{"input","output"}` (aliases `prompt` and `response`/`completion`) and
//! `{"messages":[{"role","content","name"?}]}`.

use std::borrow::Cow;

use serde_json::Value;

use super::fields::{Fields, opt_string, req_string, type_name};
use super::{Record, serde_via_record};
use crate::error::FieldError;

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions or a persona.
    System,
    /// The other side of the conversation.
    User,
    /// The model (the persona being learnt).
    Assistant,
}

impl Role {
    /// The name used in JSONL.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => return None,
        })
    }
}

/// One turn of a chat sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// Who speaks.
    pub role: Role,
    /// What they say.
    pub content: String,
    /// The speaker's name (group chats: tells the other speakers apart).
    pub name: Option<String>,
    /// Unknown fields of the turn, kept in order.
    pub fields: Fields,
}

impl Turn {
    /// A turn with no name.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Turn { role, content: content.into(), name: None, fields: Fields::default() }
    }

    /// The same turn with a speaker name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Parses one turn (`{"role","content","name"?}`), naming the field in any error.
    pub fn from_value(value: Value) -> Result<Self, FieldError> {
        let mut fields = Fields::from_value(value)?;
        let role = req_string(&mut fields, "role")?;
        let role = Role::parse(&role).ok_or_else(|| {
            FieldError::field("role", format!("unknown role \"{role}\" (expected system, user or assistant)"))
        })?;
        Ok(Turn { role, content: req_string(&mut fields, "content")?, name: opt_string(&mut fields, "name")?, fields })
    }

    fn to_value(&self) -> Value {
        self.fields.write(vec![
            ("role", Some(Value::String(self.role.as_str().into()))),
            ("content", Some(Value::String(self.content.clone()))),
            ("name", self.name.clone().map(Value::String)),
        ])
    }
}

/// Which key a pair's prompt was read from (written back under the same key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputKey {
    /// `"input"` (MTN Sails).
    #[default]
    Input,
    /// `"prompt"`.
    Prompt,
}

/// Which key a pair's answer was read from (written back under the same key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputKey {
    /// `"output"` (MTN Sails).
    #[default]
    Output,
    /// `"response"`.
    Response,
    /// `"completion"`.
    Completion,
}

impl InputKey {
    fn as_str(self) -> &'static str {
        match self {
            InputKey::Input => "input",
            InputKey::Prompt => "prompt",
        }
    }
}

impl OutputKey {
    fn as_str(self) -> &'static str {
        match self {
            OutputKey::Output => "output",
            OutputKey::Response => "response",
            OutputKey::Completion => "completion",
        }
    }
}

/// The content of a sample, by shape.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleBody {
    /// `{"text"}`: plain language-model text; every token carries loss.
    Text(String),
    /// `{"input","output"}`: a prompt and the answer to learn.
    Pair {
        /// The prompt.
        input: String,
        /// The answer.
        output: String,
        /// The key the prompt was read from.
        input_key: InputKey,
        /// The key the answer was read from.
        output_key: OutputKey,
    },
    /// `{"messages"}`: a conversation.
    Chat(Vec<Turn>),
}

/// One training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The content.
    pub body: SampleBody,
    /// Unknown fields (`id`, `source`, `meta`, anything else), kept in order.
    pub fields: Fields,
}

impl Sample {
    /// A `{"text"}` sample.
    pub fn text(text: impl Into<String>) -> Self {
        Sample { body: SampleBody::Text(text.into()), fields: Fields::default() }
    }

    /// An `{"input","output"}` sample.
    pub fn pair(input: impl Into<String>, output: impl Into<String>) -> Self {
        Sample {
            body: SampleBody::Pair {
                input: input.into(),
                output: output.into(),
                input_key: InputKey::Input,
                output_key: OutputKey::Output,
            },
            fields: Fields::default(),
        }
    }

    /// A `{"messages"}` sample.
    pub fn chat(turns: Vec<Turn>) -> Self {
        Sample { body: SampleBody::Chat(turns), fields: Fields::default() }
    }

    /// The sample's `id`, if it has one.
    pub fn id(&self) -> Option<&Value> {
        self.fields.get("id")
    }

    /// The shape's name: `text`, `pair` or `chat`.
    pub fn shape(&self) -> &'static str {
        match self.body {
            SampleBody::Text(_) => "text",
            SampleBody::Pair { .. } => "pair",
            SampleBody::Chat(_) => "chat",
        }
    }

    /// The sample as turns: a pair is a user turn and an assistant turn; a text sample has none.
    pub fn turns(&self) -> Vec<Turn> {
        match &self.body {
            SampleBody::Text(_) => Vec::new(),
            SampleBody::Pair { input, output, .. } => {
                vec![Turn::new(Role::User, input.clone()), Turn::new(Role::Assistant, output.clone())]
            }
            SampleBody::Chat(turns) => turns.clone(),
        }
    }
}

impl Record for Sample {
    fn from_value(value: Value) -> Result<Self, FieldError> {
        let mut fields = Fields::from_value(value)?;
        let body = if fields.has("messages") {
            let msgs = fields.take("messages").unwrap_or(Value::Null);
            let Value::Array(items) = msgs else {
                return Err(FieldError::field("messages", format!("expected an array, found {}", type_name(&msgs))));
            };
            let turns = items
                .into_iter()
                .enumerate()
                .map(|(i, t)| Turn::from_value(t).map_err(|e| e.within(&format!("messages[{i}]"))))
                .collect::<Result<Vec<_>, _>>()?;
            SampleBody::Chat(turns)
        } else if ["input", "prompt", "output", "response", "completion"].iter().any(|k| fields.has(k)) {
            let input_key = if fields.has("input") { InputKey::Input } else { InputKey::Prompt };
            let output_key = if fields.has("output") {
                OutputKey::Output
            } else if fields.has("response") {
                OutputKey::Response
            } else {
                OutputKey::Completion
            };
            if !fields.has(input_key.as_str()) {
                return Err(FieldError::field("input", "missing (a pair needs \"input\" or \"prompt\")"));
            }
            if !fields.has(output_key.as_str()) {
                return Err(FieldError::field(
                    "output",
                    "missing (a pair needs \"output\", \"response\" or \"completion\")",
                ));
            }
            SampleBody::Pair {
                input: req_string(&mut fields, input_key.as_str())?,
                output: req_string(&mut fields, output_key.as_str())?,
                input_key,
                output_key,
            }
        } else if fields.has("text") {
            SampleBody::Text(req_string(&mut fields, "text")?)
        } else {
            return Err(FieldError::record(
                "no usable fields: a sample needs \"text\", \"input\"/\"output\" or \"messages\"",
            ));
        };
        Ok(Sample { body, fields })
    }

    fn to_value(&self) -> Value {
        match &self.body {
            SampleBody::Text(t) => self.fields.write(vec![("text", Some(Value::String(t.clone())))]),
            SampleBody::Pair { input, output, input_key, output_key } => self.fields.write(vec![
                (input_key.as_str(), Some(Value::String(input.clone()))),
                (output_key.as_str(), Some(Value::String(output.clone()))),
            ]),
            SampleBody::Chat(turns) => {
                self.fields.write(vec![("messages", Some(Value::Array(turns.iter().map(Turn::to_value).collect())))])
            }
        }
    }
}
serde_via_record!(Sample);

#[cfg(test)]
mod tests;

/// A fast, borrowing view of a sample line used by [`Sample::body_from_str`].
/// True when `line` (JSON) holds a number outside f64's range (which serde_json refuses), e.g. `1e400`.
/// A scan of the bytes outside strings; only tokens with an exponent or very many digits are parsed.
fn out_of_range_number(line: &str) -> bool {
    let b = line.as_bytes();
    let (mut i, mut in_str) = (0, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                i += 1;
            }
            let tok = &line[start..i];
            if (tok.len() > 300 || tok.contains(['e', 'E'])) && tok.parse::<f64>().is_ok_and(f64::is_infinite) {
                return true;
            }
            continue;
        }
        i += 1;
    }
    false
}

mod fast {
    use std::borrow::Cow;

    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct View<'a> {
        #[serde(borrow)]
        pub text: Option<Cow<'a, str>>,
        #[serde(borrow)]
        pub input: Option<Cow<'a, str>>,
        #[serde(borrow)]
        pub prompt: Option<Cow<'a, str>>,
        #[serde(borrow)]
        pub output: Option<Cow<'a, str>>,
        #[serde(borrow)]
        pub response: Option<Cow<'a, str>>,
        #[serde(borrow)]
        pub completion: Option<Cow<'a, str>>,
        #[serde(borrow)]
        pub messages: Option<Vec<TurnView<'a>>>,
    }

    #[derive(Deserialize)]
    pub struct TurnView<'a> {
        #[serde(borrow)]
        pub role: Cow<'a, str>,
        #[serde(borrow)]
        pub content: Cow<'a, str>,
        #[serde(borrow)]
        pub name: Option<Cow<'a, str>>,
    }
}

impl Sample {
    /// Parses only a sample's content from one JSON line, fast (no `Value` tree; unknown fields are skipped,
    /// not kept). Errors are exactly those of [`Record::from_value`]: anything unusual (a null where a
    /// string belongs, duplicate keys, an unknown role, a type error) is re-parsed the full way to name the
    /// field. Tools that only read samples (validate, tokenize) use it; tools that write samples back use
    /// [`Record::from_value`], which keeps every field.
    pub fn body_from_str(line: &str) -> Result<SampleBody, FieldError> {
        if let Ok(v) = serde_json::from_str::<fast::View<'_>>(line) {
            // The skipped fields are not parsed: a number out of range there (`1e400`) would pass here and
            // fail the full parse. One policy for every tool: such a line is re-parsed, and refused.
            if let Some(body) = Self::body_from_view(v).filter(|_| !out_of_range_number(line)) {
                return Ok(body);
            }
        }
        let value = super::parse_json(line)?;
        Sample::from_value(value).map(|s| s.body)
    }

    fn body_from_view(v: fast::View<'_>) -> Option<SampleBody> {
        if let Some(msgs) = v.messages {
            let turns = msgs
                .into_iter()
                .map(|t| {
                    Some(Turn {
                        role: Role::parse(&t.role)?,
                        content: t.content.into_owned(),
                        name: t.name.map(Cow::into_owned),
                        fields: Fields::default(),
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            return Some(SampleBody::Chat(turns));
        }
        let any_pair_key = v.input.is_some()
            || v.prompt.is_some()
            || v.output.is_some()
            || v.response.is_some()
            || v.completion.is_some();
        if any_pair_key {
            let (input, input_key) = match (v.input, v.prompt) {
                (Some(i), _) => (i, InputKey::Input),
                (None, Some(p)) => (p, InputKey::Prompt),
                _ => return None,
            };
            let (output, output_key) = match (v.output, v.response, v.completion) {
                (Some(o), _, _) => (o, OutputKey::Output),
                (None, Some(r), _) => (r, OutputKey::Response),
                (None, None, Some(c)) => (c, OutputKey::Completion),
                _ => return None,
            };
            return Some(SampleBody::Pair {
                input: input.into_owned(),
                output: output.into_owned(),
                input_key,
                output_key,
            });
        }
        v.text.map(|t| SampleBody::Text(t.into_owned()))
    }
}

#[cfg(test)]
mod fast_tests;
