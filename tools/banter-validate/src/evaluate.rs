//! Judging one record (in a worker): a sample or a preference pair, its findings, and its PII-redacted
//! form when `--redact` asks for it.

use serde_json::Value;

use banter_core::Error;
use banter_core::jsonl::{Line, Raw};
use banter_core::records::{Record, Sample, SampleBody};
use banter_quality::{Assessed, CheckId, Finding, Settings, checks, text};

/// The result of evaluating one record (in a worker).
pub(crate) enum Evaluated {
    /// Not a usable sample: a reader error or a parse/schema error.
    Malformed { line: u64, error: String, raw: Option<String> },
    /// A sample with its findings.
    Sample {
        line: u64,
        raw: Raw,
        assessed: Assessed,
        /// The record with PII redacted, when it changed.
        redacted: Option<String>,
        excerpt: String,
    },
}

pub(crate) fn evaluate_one(item: Result<Line<Raw>, Error>, name: &str, s: &Settings, redact: bool) -> Evaluated {
    let Line { line, record: raw } = match item {
        Ok(l) => l,
        Err(e) => {
            return Evaluated::Malformed { line: e.line().unwrap_or(0), error: e.to_string(), raw: None };
        }
    };
    // Preference records (rare keys, so the common sample lines are not parsed twice).
    let pref_value = match &raw {
        Raw::Value(v) => is_preference(v).then(|| v.clone()),
        Raw::Text(t)
            if ["\"chosen\"", "\"ranked_indices\"", "\"responses\"", "\"model_reply\""]
                .iter()
                .any(|k| t.contains(k)) =>
        {
            serde_json::from_str::<Value>(t).ok().filter(is_preference)
        }
        Raw::Text(_) => None,
    };
    if let Some(v) = pref_value {
        return evaluate_preference(line, raw, &v, name, s, redact);
    }
    let parsed = match &raw {
        Raw::Text(t) => Sample::body_from_str(t).map(|body| Sample { body, fields: Default::default() }),
        Raw::Value(v) => Sample::from_value(v.clone()),
    };
    let sample = match parsed {
        Ok(s) => s,
        Err(err) => {
            let raw_text = match raw {
                Raw::Text(t) => Some(t),
                Raw::Value(v) => Some(v.to_string()),
            };
            return Evaluated::Malformed { line, error: Error::data(name, Some(line), err).to_string(), raw: raw_text };
        }
    };
    let assessed = banter_quality::assess(&sample, s);
    let redacted = if redact && assessed.findings.iter().any(|f| f.check == CheckId::Pii) {
        // Re-read the whole record (unknown fields included) to write it back redacted.
        raw.clone().parse().and_then(Sample::from_value).ok().and_then(|full| redact_sample(&full))
    } else {
        None
    };
    let excerpt = checks::responses(&sample).last().map(|r| text::excerpt(r.text.trim(), 80)).unwrap_or_default();
    Evaluated::Sample { line, raw, assessed, redacted, excerpt }
}

/// A preference record (`docs/formats.md`): TRL's `chosen`/`rejected`, a ranking, or a corrected feedback line.
fn is_preference(v: &Value) -> bool {
    let has = |k: &str| v.get(k).is_some();
    (has("chosen") && has("rejected")) || has("ranked_indices") || has("responses") || has("model_reply")
}

/// A preference record: malformed (a bad ranking, a missing reply) with its field named, or the preferred
/// exchange judged as a sample plus what makes the preference useless (an empty, repeated or echoed reply).
/// PII cannot be redacted inside one yet, so with `--redact` a preference that has PII is not kept.
fn evaluate_preference(line: u64, raw: Raw, v: &Value, name: &str, s: &Settings, redact: bool) -> Evaluated {
    let p = match banter_core::records::Preference::from_value(v.clone()) {
        Ok(p) => p,
        Err(err) => {
            return Evaluated::Malformed {
                line,
                error: Error::data(name, Some(line), err).to_string(),
                raw: Some(v.to_string()),
            };
        }
    };
    let mut turns = p.prompt.clone();
    turns.push(banter_core::records::Turn::new(banter_core::records::Role::Assistant, p.replies[0].clone()));
    let mut assessed = banter_quality::assess(&Sample::chat(turns), s);
    for (field, msg) in p.problems() {
        let check = if msg.starts_with("empty") {
            CheckId::Empty
        } else if msg.contains("repeats the prompt") {
            CheckId::Echo
        } else {
            CheckId::Structure
        };
        assessed.findings.push(Finding::new(check, format!("{field}: {msg}")));
    }
    if redact && assessed.findings.iter().any(|f| f.check == CheckId::Pii) {
        assessed.findings.push(Finding::new(CheckId::Structure, "PII in a preference record cannot be redacted"));
    }
    let excerpt = text::excerpt(p.replies[0].trim(), 80);
    Evaluated::Sample { line, raw, assessed, redacted: None, excerpt }
}

/// The sample with PII replaced in every text, serialized; `None` when nothing changed.
fn redact_sample(sample: &Sample) -> Option<String> {
    let mut changed = false;
    let mut fix = |t: &mut String| {
        let found = checks::pii::find(t);
        if !found.is_empty() {
            *t = checks::pii::redact(t, &found);
            changed = true;
        }
    };
    let mut s = sample.clone();
    match &mut s.body {
        SampleBody::Text(t) => fix(t),
        SampleBody::Pair { input, output, .. } => {
            fix(input);
            fix(output);
        }
        SampleBody::Chat(turns) => turns.iter_mut().for_each(|t| fix(&mut t.content)),
    }
    changed.then(|| s.to_value().to_string())
}
