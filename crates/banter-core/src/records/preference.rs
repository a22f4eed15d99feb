//! [`Preference`]: replies to one prompt, best first — the records preference tuning (DPO) learns from.
//!
//! Read in the forms people have (`docs/formats.md`):
//! - TRL's explicit prompt: `{"prompt", "chosen", "rejected"}`, each a string or a list of turns;
//! - TRL's implicit prompt: `{"chosen": [turns…], "rejected": [turns…]}`, whose shared leading turns are the
//!   prompt and whose last assistant turns are the replies;
//! - Asimbot's ranking: `{"prompt", "responses": [k replies], "ranked_indices": [k indices, best first]}`;
//! - banter-chat's feedback log: a corrected exchange, `{"messages": [… the correction], "corrected": true,
//!   "model_reply": "the rejected reply"}`.
//!
//! A ranking of k replies stands for its k·(k−1)/2 pairs ([`Preference::pairs`]).

use serde_json::Value;

use super::fields::{Fields, type_name};
use super::sample::{Role, Turn};
use crate::error::FieldError;

/// A prompt and its replies ranked best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Preference {
    /// The conversation so far (a string prompt is one user turn).
    pub prompt: Vec<Turn>,
    /// Replies, best first.
    pub replies: Vec<String>,
    /// Unknown fields, kept.
    pub fields: Fields,
}

fn turns(v: Value, field: &str) -> Result<Vec<Turn>, FieldError> {
    match v {
        Value::String(s) => Ok(vec![Turn::new(Role::User, s)]),
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, t)| Turn::from_value(t).map_err(|e| e.within(&format!("{field}[{i}]"))))
            .collect(),
        other => {
            Err(FieldError::field(field, format!("expected a string or a list of turns, found {}", type_name(&other))))
        }
    }
}

/// A reply: a string, or turns whose last is the assistant's.
fn reply(v: Value, field: &str) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Array(_) => {
            let t = turns(v, field)?;
            match t.last() {
                Some(last) if last.role == Role::Assistant => Ok(last.content.clone()),
                _ => Err(FieldError::field(field, "the last turn must be the assistant's reply")),
            }
        }
        other => {
            Err(FieldError::field(field, format!("expected a string or a list of turns, found {}", type_name(&other))))
        }
    }
}

impl Preference {
    /// Every (better, worse) pair of reply indices, best pairs first: `(0,1), (0,2), …, (1,2), …`.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        let k = self.replies.len();
        (0..k).flat_map(|i| (i + 1..k).map(move |j| (i, j))).collect()
    }

    /// What makes the record useless to learn from: an empty reply, two equal replies, a reply that repeats
    /// the prompt's last turn. Each as `(field, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let last = self.prompt.last().map(|t| t.content.trim()).unwrap_or("");
        for (i, r) in self.replies.iter().enumerate() {
            let r = r.trim();
            if r.is_empty() {
                out.push((format!("replies[{i}]"), "empty reply".to_string()));
            } else if !last.is_empty() && r == last {
                out.push((format!("replies[{i}]"), "the reply repeats the prompt".to_string()));
            }
            if let Some(j) = self.replies[..i].iter().position(|o| o.trim() == r) {
                out.push((format!("replies[{i}]"), format!("the same reply as replies[{j}]: nothing to prefer")));
            }
        }
        out
    }
}

impl super::Record for Preference {
    fn from_value(value: Value) -> Result<Self, FieldError> {
        let mut f = Fields::from_value(value)?;
        if f.has("responses") || f.has("ranked_indices") {
            let prompt = turns(f.take("prompt").ok_or_else(|| FieldError::field("prompt", "missing"))?, "prompt")?;
            let Some(Value::Array(rs)) = f.take("responses") else {
                return Err(FieldError::field("responses", "expected a list of replies"));
            };
            let rs: Vec<String> = rs
                .into_iter()
                .enumerate()
                .map(|(i, r)| reply(r, &format!("responses[{i}]")))
                .collect::<Result<_, _>>()?;
            let Some(Value::Array(idx)) = f.take("ranked_indices") else {
                return Err(FieldError::field(
                    "ranked_indices",
                    "expected a list of indices into responses, best first",
                ));
            };
            let idx: Vec<usize> = idx
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_u64()
                        .map(|x| x as usize)
                        .ok_or_else(|| FieldError::field(format!("ranked_indices[{i}]"), "expected an index"))
                })
                .collect::<Result<_, _>>()?;
            let mut seen = vec![false; rs.len()];
            for (i, &x) in idx.iter().enumerate() {
                if x >= rs.len() || std::mem::replace(&mut seen[x], true) {
                    return Err(FieldError::field(
                        format!("ranked_indices[{i}]"),
                        format!("{x} is out of range or repeated: the indices must order all {} responses", rs.len()),
                    ));
                }
            }
            if idx.len() != rs.len() || rs.len() < 2 {
                return Err(FieldError::field(
                    "ranked_indices",
                    format!("ranks {} of {} responses: rank them all (at least 2)", idx.len(), rs.len()),
                ));
            }
            let replies = idx.iter().map(|&i| rs[i].clone()).collect();
            return Ok(Preference { prompt, replies, fields: f });
        }
        if f.has("model_reply") && f.has("messages") {
            // banter-chat --feedback: the user's correction is preferred to the model's reply.
            let msgs = turns(f.take("messages").unwrap_or_default(), "messages")?;
            let rejected = match f.take("model_reply") {
                Some(Value::String(r)) => r,
                _ => return Err(FieldError::field("model_reply", "expected the model's reply as a string")),
            };
            let Some((last, prompt)) = msgs.split_last().filter(|(l, p)| l.role == Role::Assistant && !p.is_empty())
            else {
                return Err(FieldError::field(
                    "messages",
                    "expected the prompt turns and the corrected assistant reply",
                ));
            };
            return Ok(Preference {
                prompt: prompt.to_vec(),
                replies: vec![last.content.clone(), rejected],
                fields: f,
            });
        }
        let chosen = f.take("chosen").ok_or_else(|| FieldError::field("chosen", "missing"))?;
        let rejected = f.take("rejected").ok_or_else(|| FieldError::field("rejected", "missing"))?;
        let prompt = match f.take("prompt") {
            Some(p) => turns(p, "prompt")?,
            None => {
                // Implicit prompt: the turns both conversations share, before their replies.
                let (c, r) = (turns(chosen.clone(), "chosen")?, turns(rejected.clone(), "rejected")?);
                let shared = c.iter().zip(&r).take_while(|(a, b)| a.role == b.role && a.content == b.content).count();
                let shared = shared.min(c.len().saturating_sub(1)).min(r.len().saturating_sub(1));
                if shared == 0 {
                    return Err(FieldError::field("prompt", "missing, and chosen and rejected share no leading turns"));
                }
                c[..shared].to_vec()
            }
        };
        Ok(Preference { prompt, replies: vec![reply(chosen, "chosen")?, reply(rejected, "rejected")?], fields: f })
    }

    fn to_value(&self) -> Value {
        let turns: Vec<Value> =
            self.prompt.iter().map(|t| serde_json::json!({"role": t.role.as_str(), "content": t.content})).collect();
        let (chosen, rejected) = (self.replies.first().cloned(), self.replies.get(1).cloned());
        if self.replies.len() == 2 {
            return self.fields.write(vec![
                ("prompt", Some(Value::Array(turns))),
                ("chosen", chosen.map(Value::String)),
                ("rejected", rejected.map(Value::String)),
            ]);
        }
        let n = self.replies.len();
        self.fields.write(vec![
            ("prompt", Some(Value::Array(turns))),
            ("responses", Some(Value::from(self.replies.clone()))),
            ("ranked_indices", Some(Value::from((0..n).collect::<Vec<_>>()))),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Record;
    use serde_json::json;

    fn parse(v: Value) -> Result<Preference, FieldError> {
        Preference::from_value(v)
    }

    #[test]
    fn the_three_forms_read_to_the_same_thing() {
        let explicit = parse(json!({"prompt": "hi", "chosen": "hello!", "rejected": "go away"})).unwrap();
        let conversational = parse(json!({
            "prompt": [{"role": "user", "content": "hi"}],
            "chosen": [{"role": "assistant", "content": "hello!"}],
            "rejected": [{"role": "assistant", "content": "go away"}]}))
        .unwrap();
        let implicit = parse(json!({
            "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"}],
            "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}]}))
        .unwrap();
        let ranked =
            parse(json!({"prompt": "hi", "responses": ["go away", "hello!"], "ranked_indices": [1, 0]})).unwrap();
        for p in [&conversational, &implicit, &ranked] {
            assert_eq!((&p.prompt, &p.replies), (&explicit.prompt, &explicit.replies));
        }
    }

    #[test]
    fn a_ranking_of_three_is_three_pairs_best_first() {
        let p = parse(json!({"prompt": "q", "responses": ["a", "b", "c"], "ranked_indices": [2, 0, 1]})).unwrap();
        assert_eq!(p.replies, ["c", "a", "b"]);
        assert_eq!(p.pairs(), [(0, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn bad_rankings_name_their_field() {
        let e = parse(json!({"prompt": "q", "responses": ["a", "b", "c"], "ranked_indices": [0, 0, 1]})).unwrap_err();
        assert!(e.to_string().contains("ranked_indices[1]"), "{e}");
        let e = parse(json!({"prompt": "q", "responses": ["a", "b", "c"], "ranked_indices": [0, 1]})).unwrap_err();
        assert!(e.to_string().contains("ranked_indices"), "{e}");
        let e = parse(json!({"prompt": "q", "responses": ["a", "b"], "ranked_indices": [0, 5]})).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let e = parse(json!({"chosen": "a"})).unwrap_err();
        assert!(e.to_string().contains("rejected"), "{e}");
        let e = parse(json!({"prompt": 3, "chosen": "a", "rejected": "b"})).unwrap_err();
        assert!(e.to_string().contains("prompt"), "{e}");
    }

    #[test]
    fn useless_records_are_found() {
        let p = parse(json!({"prompt": "same", "responses": ["x", " x ", "", "same"], "ranked_indices": [0, 1, 2, 3]}))
            .unwrap();
        let msgs: Vec<String> = p.problems().into_iter().map(|(f, m)| format!("{f}: {m}")).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("replies[1]") && msgs[0].contains("same reply"));
        assert!(msgs[1].contains("empty"));
        assert!(msgs[2].contains("repeats the prompt"));
    }

    #[test]
    fn records_round_trip_with_unknown_fields() {
        let p = parse(json!({"id": 7, "prompt": "q", "chosen": "a", "rejected": "b"})).unwrap();
        let back = parse(p.to_value()).unwrap();
        assert_eq!(back, p);
        assert_eq!(p.to_value()["id"], 7);
    }
}
