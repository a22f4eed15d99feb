//! Chat templates: turn any [`Sample`](crate::records::Sample) into text plus the byte spans that carry loss.
//!
//! Two presets ship (`docs/formats.md#chat-templates`):
//!
//! - `chatml` (default): `<|system|>`, `<|user|>`, `<|assistant|>` markers, each turn closed by `<|end|>`;
//!   loss on every assistant turn's content and its `<|end|>` (or only the last, `loss = "last"`).
//! - `asimbot`: Asimbot's speaker tokens. The persona (assistant) speaks after `<SYS>`; other speakers get
//!   `<USR_A>`, `<USR_B>`, … in order of first appearance (by `name`); a system turn (a persona
//!   description) comes first, closed by `<SEP>`. Loss is taken only after the last `<SYS>`.
//!
//! `{"text"}` samples are rendered as they are: all loss under `chatml`; under `asimbot`, loss after the
//! last `<SYS>` in the text, and none if it has no `<SYS>` (Asimbot drops such rows; banter-tokenize counts
//! them).
//!
//! Templates never add the tokenizer's EOS: the tokenizer appends it after each sample, with loss when
//! [`Rendered::eos_carries_loss`] (the sample ends inside a loss span), so the model learns to stop.
//!
//! A template is plain data (serde): it is stored with a model (`banter_template.json`, and as a Jinja
//! `chat_template` in `tokenizer_config.json` for Hugging Face) so training and chat always agree.

mod render;

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::records::{Role, Turn};

/// Which assistant turns carry loss under the role template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossOn {
    /// Every assistant turn.
    #[default]
    All,
    /// Only the last assistant turn.
    Last,
}

/// The two ways banter renders conversations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Style {
    /// A marker per role, a closing marker per turn (ChatML-like).
    Roles {
        /// Marker before a system turn.
        system: String,
        /// Marker before a user turn.
        user: String,
        /// Marker before an assistant turn.
        assistant: String,
        /// Marker closing every turn; also the end-of-turn stop token.
        end: String,
        /// Which assistant turns carry loss.
        #[serde(default)]
        loss: LossOn,
    },
    /// A marker per speaker (Asimbot): the persona, and letters for everyone else.
    Speakers {
        /// Marker before the persona's turns; loss is taken after the last one.
        persona: String,
        /// Other speakers' markers are `speaker_prefix + letter + speaker_suffix` (`<USR_` `A` `>`).
        speaker_prefix: String,
        /// See `speaker_prefix`.
        speaker_suffix: String,
        /// How many distinct speaker markers exist (A, B, …; at most 26); later speakers share the last.
        max_speakers: u8,
        /// Marker closing a leading system turn (persona description).
        sep: String,
    },
    /// A Hugging Face Jinja chat template, rendered as `apply_chat_template` renders it ([`crate::jinja`]).
    Jinja {
        /// The template source.
        source: String,
        /// `bos_token` as the template sees it.
        #[serde(default)]
        bos_token: String,
        /// `eos_token` as the template sees it.
        #[serde(default)]
        eos_token: String,
        /// Which assistant turns carry loss.
        #[serde(default)]
        loss: LossOn,
    },
}

/// A chat template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTemplate {
    /// The preset's name, or the user's.
    pub name: String,
    /// How turns are marked.
    #[serde(flatten)]
    pub style: Style,
}

/// A sample rendered to text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    /// The text to tokenize.
    pub text: String,
    /// Byte ranges of `text` whose tokens carry loss, in order, not overlapping.
    pub loss_spans: Vec<Range<usize>>,
}

impl Rendered {
    /// True when the sample ends inside a loss span: the EOS the tokenizer appends should carry loss.
    pub fn eos_carries_loss(&self) -> bool {
        self.loss_spans.last().is_some_and(|s| s.end == self.text.len() && !s.is_empty())
    }

    /// True when some text carries loss.
    pub fn has_loss(&self) -> bool {
        self.loss_spans.iter().any(|s| !s.is_empty())
    }

    /// The text of the loss spans, concatenated (what the model learns to say).
    pub fn loss_text(&self) -> String {
        self.loss_spans.iter().map(|s| &self.text[s.clone()]).collect()
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn push_loss(&mut self, s: &str) {
        let start = self.text.len();
        self.text.push_str(s);
        match self.loss_spans.last_mut() {
            Some(last) if last.end == start => last.end = self.text.len(),
            _ => self.loss_spans.push(start..self.text.len()),
        }
    }
}

/// Names of the shipped presets.
pub const PRESETS: &[&str] = &["chatml", "asimbot"];

impl Default for ChatTemplate {
    fn default() -> Self {
        Self::chatml()
    }
}

impl ChatTemplate {
    /// The default ChatML-like template.
    pub fn chatml() -> Self {
        ChatTemplate {
            name: "chatml".into(),
            style: Style::Roles {
                system: "<|system|>".into(),
                user: "<|user|>".into(),
                assistant: "<|assistant|>".into(),
                end: "<|end|>".into(),
                loss: LossOn::All,
            },
        }
    }

    /// Text without chat markers: turns' contents one after another, no special tokens (a tokenizer trained
    /// on plain text needs none).
    pub fn plain_text() -> Self {
        ChatTemplate {
            name: "plain".into(),
            style: Style::Jinja {
                source: "{% for m in messages %}{{ m['content'] }}{% endfor %}".into(),
                bos_token: String::new(),
                eos_token: String::new(),
                loss: LossOn::All,
            },
        }
    }

    /// Asimbot's speaker-token template.
    pub fn asimbot() -> Self {
        ChatTemplate {
            name: "asimbot".into(),
            style: Style::Speakers {
                persona: "<SYS>".into(),
                speaker_prefix: "<USR_".into(),
                speaker_suffix: ">".into(),
                max_speakers: 26,
                sep: "<SEP>".into(),
            },
        }
    }

    /// A preset by name (`chatml`, `asimbot`).
    pub fn preset(name: &str) -> Result<Self, Error> {
        match name {
            "chatml" => Ok(Self::chatml()),
            "asimbot" => Ok(Self::asimbot()),
            other => Err(Error::usage_hint(
                format!("unknown chat template \"{other}\""),
                format!("use one of {} or a template JSON file", PRESETS.join(", ")),
            )),
        }
    }

    /// The template a model was trained with, looking in `dirs` in order: banter's `banter_template.json`,
    /// else the Hugging Face chat template one ships. The one place that order is decided (chat, export).
    pub fn from_model_dirs(dirs: &[&Path]) -> Result<Option<Self>, Error> {
        if let Some(p) = dirs.iter().map(|d| d.join("banter_template.json")).find(|p| p.exists()) {
            return Self::load(&p).map(Some);
        }
        for d in dirs {
            if let Some(t) = Self::from_hf_dir(d)? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// The Jinja chat template a Hugging Face model directory ships (`chat_template.jinja` or
    /// `tokenizer_config.json`), if any.
    pub fn from_hf_dir(dir: &Path) -> Result<Option<Self>, Error> {
        let found = crate::jinja::from_model_dir(dir).map_err(Error::Template)?;
        let Some((source, bos_token, eos_token)) = found else { return Ok(None) };
        let t =
            ChatTemplate { name: "hf".into(), style: Style::Jinja { source, bos_token, eos_token, loss: LossOn::All } };
        t.validate().map_err(|e| Error::usage(format!("{}: {e}", dir.display())))?;
        Ok(Some(t))
    }

    /// The compiled Jinja template; compiled once per thread and reused for every sample rendered with it.
    fn jinja(&self) -> Option<Result<std::rc::Rc<crate::jinja::Jinja>, String>> {
        type Compiled = (String, String, String, std::rc::Rc<crate::jinja::Jinja>);
        thread_local! {
            static LAST: std::cell::RefCell<Option<Compiled>> = const { std::cell::RefCell::new(None) };
        }
        let Style::Jinja { source, bos_token, eos_token, .. } = &self.style else { return None };
        Some(LAST.with(|last| {
            let mut last = last.borrow_mut();
            if let Some((s, b, e, j)) = last.as_ref()
                && s == source
                && b == bos_token
                && e == eos_token
            {
                return Ok(j.clone());
            }
            let j = std::rc::Rc::new(crate::jinja::Jinja::new(source, bos_token, eos_token)?);
            *last = Some((source.clone(), bos_token.clone(), eos_token.clone(), j.clone()));
            Ok(j)
        }))
    }

    /// A preset name, or a path to a template JSON file.
    pub fn from_arg(arg: &str) -> Result<Self, Error> {
        if PRESETS.contains(&arg) { Self::preset(arg) } else { Self::load(Path::new(arg)) }
    }

    /// Loads a template from JSON (unknown keys are an error).
    pub fn load(path: &Path) -> Result<Self, Error> {
        crate::inputs::register(path);
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
        let t: ChatTemplate = serde_json::from_str(&text)
            .map_err(|e| Error::usage(format!("{}: invalid chat template: {e}", path.display())))?;
        t.validate().map_err(|e| Error::usage(format!("{}: {e}", path.display())))?;
        Ok(t)
    }

    /// The template as pretty JSON (what is stored with a model).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks that markers are non-empty and distinct.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(j) = self.jinja() {
            let j = j.map_err(Error::Template)?;
            let probe = [Turn::new(Role::User, "hi"), Turn::new(Role::Assistant, "hello")];
            let text = j.render(&probe, false).map_err(Error::Template)?;
            if text.trim().is_empty() {
                return Err(Error::Template("chat template: renders a conversation as empty text".into()));
            }
            return Ok(());
        }
        let tokens = self.special_tokens();
        if tokens.iter().any(|t| t.trim().is_empty()) {
            return Err(Error::Template("chat template markers must not be empty".into()));
        }
        let mut sorted = tokens.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != tokens.len() {
            return Err(Error::Template("chat template markers must be distinct".into()));
        }
        if let Style::Speakers { max_speakers, .. } = self.style
            && !(1..=26).contains(&max_speakers)
        {
            return Err(Error::Template("max_speakers must be between 1 and 26".into()));
        }
        Ok(())
    }

    /// The marker strings to add to a tokenizer as special tokens.
    pub fn special_tokens(&self) -> Vec<String> {
        match &self.style {
            Style::Roles { system, user, assistant, end, .. } => {
                vec![system.clone(), user.clone(), assistant.clone(), end.clone()]
            }
            Style::Speakers { persona, sep, max_speakers, .. } => {
                let mut v = vec![persona.clone(), sep.clone()];
                v.extend((0..*max_speakers).map(|i| self.speaker_marker(i as usize)));
                v
            }
            // A model's own template uses the tokens its tokenizer already has.
            Style::Jinja { .. } => Vec::new(),
        }
    }

    /// Strings at which generation stops (besides the tokenizer's EOS): the end-of-turn marker, or,
    /// for speaker templates, any other speaker's marker.
    pub fn stop_strings(&self) -> Vec<String> {
        match &self.style {
            Style::Roles { end, .. } => vec![end.clone()],
            Style::Speakers { persona, max_speakers, .. } => {
                let mut v: Vec<String> = (0..*max_speakers).map(|i| self.speaker_marker(i as usize)).collect();
                v.push(persona.clone());
                v
            }
            Style::Jinja { eos_token, .. } => {
                // What the template writes after a reply, up to its first whitespace: the end-of-turn
                // marker (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`), plus the EOS.
                let mut v: Vec<String> = self.end_of_turn().into_iter().collect();
                if !eos_token.is_empty() && !v.contains(eos_token) {
                    v.push(eos_token.clone());
                }
                v
            }
        }
    }

    /// The EOS a model's own (Jinja) template names; banter's templates use the tokenizer's.
    pub fn eos_token(&self) -> Option<&str> {
        match &self.style {
            Style::Jinja { eos_token, .. } if !eos_token.is_empty() => Some(eos_token),
            _ => None,
        }
    }

    fn end_of_turn(&self) -> Option<String> {
        let j = self.jinja()?.ok()?;
        let probe = [Turn::new(Role::User, "hi"), Turn::new(Role::Assistant, "\u{1}")];
        let text = j.render(&probe, false).ok()?;
        let after = text.split('\u{1}').nth(1)?.trim_start();
        let end: String = after.chars().take_while(|c| !c.is_whitespace()).collect();
        (!end.is_empty()).then_some(end)
    }

    fn speaker_marker(&self, i: usize) -> String {
        match &self.style {
            Style::Speakers { speaker_prefix, speaker_suffix, max_speakers, .. } => {
                let i = i.min(usize::from(*max_speakers).saturating_sub(1)).min(25);
                format!("{speaker_prefix}{}{speaker_suffix}", (b'A' + i as u8) as char)
            }
            Style::Roles { user, .. } | Style::Jinja { source: user, .. } => user.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
