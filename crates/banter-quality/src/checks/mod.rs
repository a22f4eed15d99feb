//! The checks: ids, severities, settings, and [`evaluate`], which runs every enabled check on one sample.
//!
//! Which text is checked: for a pair, the output (and the input for `echo`); for a chat, every assistant
//! turn (the turns that carry loss), each against the user turn before it; for a text sample, the part
//! after the last `<SYS>` when there is one (Asimbot rows), else the whole text, template markers removed.

pub mod pii;
pub mod quality;
pub mod web;

use std::fmt;

use banter_core::records::{Role, Sample, SampleBody};
use serde::Serialize;

use crate::text;

/// A check's id, as used on the command line, in reasons and in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    /// Not a usable sample: bad JSON, wrong schema, no assistant turn, …
    Structure,
    /// The output (or an assistant turn) is empty.
    Empty,
    /// Fewer words than `--min-words`.
    TooShort,
    /// Repeated word n-grams or lines.
    Repetitive,
    /// Few letters, URL-only, or one character repeated many times.
    Gibberish,
    /// The output repeats the input.
    Echo,
    /// Cut off mid-sentence.
    Incomplete,
    /// Same as an earlier sample after normalisation.
    Duplicate,
    /// Nearly the same as an earlier sample (MinHash).
    NearDuplicate,
    /// Replacement characters, mojibake or control characters.
    Encoding,
    /// Emails, phone numbers, IP addresses, card numbers.
    Pii,
    /// Gopher quality rules (web profile).
    GopherQuality,
    /// Gopher repetition rules (web profile).
    GopherRepetition,
}

/// Every check, in report order.
pub const ALL: [CheckId; 13] = [
    CheckId::Structure,
    CheckId::Empty,
    CheckId::TooShort,
    CheckId::Repetitive,
    CheckId::Gibberish,
    CheckId::Echo,
    CheckId::Incomplete,
    CheckId::Duplicate,
    CheckId::NearDuplicate,
    CheckId::Encoding,
    CheckId::Pii,
    CheckId::GopherQuality,
    CheckId::GopherRepetition,
];

impl CheckId {
    /// The id.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Structure => "structure",
            CheckId::Empty => "empty",
            CheckId::TooShort => "too-short",
            CheckId::Repetitive => "repetitive",
            CheckId::Gibberish => "gibberish",
            CheckId::Echo => "echo",
            CheckId::Incomplete => "incomplete",
            CheckId::Duplicate => "duplicate",
            CheckId::NearDuplicate => "near-duplicate",
            CheckId::Encoding => "encoding",
            CheckId::Pii => "pii",
            CheckId::GopherQuality => "gopher-quality",
            CheckId::GopherRepetition => "gopher-repetition",
        }
    }

    /// Parses an id.
    pub fn parse(s: &str) -> Option<CheckId> {
        ALL.iter().copied().find(|c| c.as_str() == s)
    }

    fn index(self) -> usize {
        ALL.iter().position(|&c| c == self).unwrap_or(0)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failed check does to a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The check does not run.
    Off,
    /// Reported, the sample is kept.
    Warn,
    /// The sample is rejected.
    Reject,
}

/// The two sets of defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Chat and instruction samples (MTN Sails' checks, fixed, plus duplicates, encoding and PII).
    Chat,
    /// Web documents (`{"text"}` pages): Gopher quality and repetition rules instead of the chat checks.
    Web,
}

/// Settings of every check.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The profile the defaults came from.
    pub profile: Profile,
    /// Severity per check, indexed like [`ALL`].
    #[serde(skip)]
    pub severity: [Severity; 13],
    /// `too-short`: minimum words (characters for scripts without spaces).
    pub min_words: usize,
    /// `repetitive`: highest repetition score kept (MTN: 0.3).
    pub max_repetition: f64,
    /// `gibberish`: lowest share of letters among non-space characters (MTN: 0.3).
    pub min_letter_ratio: f64,
    /// `gibberish`: longest run of one character kept.
    pub max_char_run: usize,
    /// `echo`: highest share of the input's distinct words the output may repeat (MTN: 0.6).
    pub max_echo_overlap: f64,
    /// `incomplete`: languages whose rules run (`en`, `fa`).
    pub incomplete_langs: Vec<String>,
}

impl Settings {
    /// The defaults of a profile.
    pub fn new(profile: Profile) -> Self {
        use Severity::{Off, Reject, Warn};
        let mut severity = [Reject; 13];
        severity[CheckId::NearDuplicate.index()] = Off;
        severity[CheckId::Pii.index()] = Warn;
        severity[CheckId::GopherQuality.index()] = Off;
        severity[CheckId::GopherRepetition.index()] = Off;
        if profile == Profile::Web {
            for c in [CheckId::TooShort, CheckId::Repetitive, CheckId::Gibberish, CheckId::Echo, CheckId::Incomplete] {
                severity[c.index()] = Off;
            }
            severity[CheckId::GopherQuality.index()] = Reject;
            severity[CheckId::GopherRepetition.index()] = Reject;
        }
        Settings {
            profile,
            severity,
            min_words: 3,
            max_repetition: 0.3,
            min_letter_ratio: 0.3,
            max_char_run: 20,
            max_echo_overlap: 0.6,
            incomplete_langs: vec!["en".into(), "fa".into()],
        }
    }

    /// A check's severity.
    pub fn severity(&self, c: CheckId) -> Severity {
        self.severity[c.index()]
    }

    /// Sets a check's severity.
    pub fn set(&mut self, c: CheckId, s: Severity) {
        self.severity[c.index()] = s;
    }

    /// True when the check runs.
    pub fn on(&self, c: CheckId) -> bool {
        self.severity(c) != Severity::Off
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Which check.
    pub check: CheckId,
    /// Why, for a human.
    pub detail: String,
}

impl Finding {
    /// A finding.
    pub fn new(check: CheckId, detail: impl Into<String>) -> Self {
        Finding { check, detail: detail.into() }
    }
}

/// One text that carries loss, with the prompt it answers.
#[derive(Debug, Clone)]
pub struct Response<'a> {
    /// The user turn (or input) before it.
    pub prompt: Option<std::borrow::Cow<'a, str>>,
    /// The reply.
    pub text: std::borrow::Cow<'a, str>,
    /// Where it is, for reports.
    pub at: Place,
}

/// Where a text is in its sample, for reports (`output`, `messages[3]`); formatted only when needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `{"text"}`.
    Text,
    /// A pair's input.
    Input,
    /// A pair's output.
    Output,
    /// A chat turn.
    Turn(usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Text => f.write_str("text"),
            Place::Input => f.write_str("input"),
            Place::Output => f.write_str("output"),
            Place::Turn(i) => write!(f, "messages[{i}]"),
        }
    }
}

/// The (prompt, response) pairs of a sample that carry loss.
pub fn responses(sample: &Sample) -> Vec<Response<'_>> {
    use std::borrow::Cow;
    match &sample.body {
        SampleBody::Pair { input, output, .. } => {
            vec![Response { prompt: Some(Cow::Borrowed(input)), text: Cow::Borrowed(output), at: Place::Output }]
        }
        SampleBody::Text(t) => match t.rfind("<SYS>") {
            Some(i) => {
                let prompt = text::strip_markers(&t[..i]);
                let prompt = (!prompt.trim().is_empty()).then_some(prompt);
                vec![Response { prompt, text: text::strip_markers(&t[i + 5..]), at: Place::Text }]
            }
            None => vec![Response { prompt: None, text: text::strip_markers(t), at: Place::Text }],
        },
        SampleBody::Chat(turns) => {
            let mut out = Vec::new();
            let mut last_user: Option<&str> = None;
            for (i, t) in turns.iter().enumerate() {
                match t.role {
                    Role::User => last_user = Some(&t.content),
                    Role::Assistant => out.push(Response {
                        prompt: last_user.map(Cow::Borrowed),
                        text: Cow::Borrowed(&t.content),
                        at: Place::Turn(i),
                    }),
                    Role::System => {}
                }
            }
            out
        }
    }
}

/// Runs every enabled per-sample check (duplicates are found later, in input order).
pub fn evaluate(sample: &Sample, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    if let SampleBody::Chat(turns) = &sample.body
        && s.on(CheckId::Structure)
    {
        if turns.is_empty() {
            out.push(Finding::new(CheckId::Structure, "no messages"));
            return out;
        }
        if !turns.iter().any(|t| t.role == Role::Assistant) {
            out.push(Finding::new(CheckId::Structure, "no assistant turn"));
            return out;
        }
    }
    let resps = responses(sample);
    let multi = resps.len() > 1;
    for r in &resps {
        let (prompt, resp, label) = (r.prompt.as_deref(), &r.text, r.at);
        let at = |d: String| if multi { format!("{label}: {d}") } else { d };
        if resp.trim().is_empty() {
            if s.on(CheckId::Empty) {
                out.push(Finding::new(CheckId::Empty, at("nothing to learn: the reply is empty".into())));
            }
            continue;
        }
        for f in quality::check_response(prompt, resp, s) {
            out.push(Finding { detail: at(f.detail), ..f });
        }
    }
    if s.on(CheckId::Encoding) || s.on(CheckId::Pii) || s.on(CheckId::GopherQuality) || s.on(CheckId::GopherRepetition)
    {
        for (label, t) in all_texts(sample) {
            if s.on(CheckId::Encoding)
                && let Some(d) = quality::encoding(t)
            {
                out.push(Finding::new(CheckId::Encoding, format!("{label}: {d}")));
            }
            if s.on(CheckId::Pii) {
                let found = pii::find(t);
                if !found.is_empty() {
                    out.push(Finding::new(CheckId::Pii, format!("{label}: {}", pii::summary(&found))));
                }
            }
        }
        if s.on(CheckId::GopherQuality) || s.on(CheckId::GopherRepetition) {
            let doc: String = match &sample.body {
                SampleBody::Text(t) => t.clone(),
                _ => resps.iter().map(|r| r.text.as_ref()).collect::<Vec<_>>().join("\n"),
            };
            if s.on(CheckId::GopherQuality)
                && let Some(d) = web::gopher_quality(&doc)
            {
                out.push(Finding::new(CheckId::GopherQuality, d));
            }
            if s.on(CheckId::GopherRepetition)
                && let Some(d) = web::gopher_repetition(&doc)
            {
                out.push(Finding::new(CheckId::GopherRepetition, d));
            }
        }
    }
    out
}

/// Every text of a sample with its place (for encoding and PII, which look at everything).
pub fn all_texts(sample: &Sample) -> Vec<(Place, &str)> {
    match &sample.body {
        SampleBody::Text(t) => vec![(Place::Text, t.as_str())],
        SampleBody::Pair { input, output, .. } => {
            vec![(Place::Input, input.as_str()), (Place::Output, output.as_str())]
        }
        SampleBody::Chat(turns) => {
            turns.iter().enumerate().map(|(i, t)| (Place::Turn(i), t.content.as_str())).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_core::records::Turn;

    fn ids(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.check.as_str()).collect()
    }

    #[test]
    fn ids_round_trip() {
        for c in ALL {
            assert_eq!(CheckId::parse(c.as_str()), Some(c));
        }
        assert_eq!(CheckId::parse("nope"), None);
    }

    #[test]
    fn chat_structure() {
        let s = Settings::new(Profile::Chat);
        assert_eq!(ids(&evaluate(&Sample::chat(vec![]), &s)), ["structure"]);
        let only_user = Sample::chat(vec![Turn::new(Role::User, "hello there friend")]);
        assert_eq!(evaluate(&only_user, &s)[0].detail, "no assistant turn");
    }

    #[test]
    fn every_assistant_turn_is_checked_and_named() {
        let s = Settings::new(Profile::Chat);
        let chat = Sample::chat(vec![
            Turn::new(Role::User, "how are you doing today"),
            Turn::new(Role::Assistant, "I am fine, thanks for asking!"),
            Turn::new(Role::User, "and tomorrow?"),
            Turn::new(Role::Assistant, "  "),
        ]);
        let f = evaluate(&chat, &s);
        assert_eq!(ids(&f), ["empty"]);
        assert_eq!(f[0].detail, "messages[3]: nothing to learn: the reply is empty");
    }

    #[test]
    fn asimbot_text_rows_check_the_reply_after_the_last_sys() {
        let s = Settings::new(Profile::Chat);
        let ok = Sample::text("<USR_A> where are you now? <SYS> at home, come over later!");
        assert!(evaluate(&ok, &s).is_empty(), "{:?}", evaluate(&ok, &s));
        let short = Sample::text("<USR_A> where are you now? <SYS> home");
        assert_eq!(ids(&evaluate(&short, &s)), ["too-short"]);
    }

    #[test]
    fn web_profile_swaps_checks() {
        let s = Settings::new(Profile::Web);
        assert!(!s.on(CheckId::TooShort) && s.on(CheckId::GopherQuality) && s.on(CheckId::Duplicate));
        let f = evaluate(&Sample::text("too short for a web page."), &s);
        assert_eq!(ids(&f), ["gopher-quality"]);
    }
}
