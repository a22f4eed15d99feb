//! Rendering: samples for training (text plus loss spans), prompts for generation, and the Jinja form stored
//! in `tokenizer_config.json` for Hugging Face.

use super::{ChatTemplate, LossOn, Rendered, Style};
use crate::records::{Role, Sample, SampleBody, Turn};

impl ChatTemplate {
    /// Renders a sample for training. A Jinja template that fails (`raise_exception`) renders nothing
    /// here; [`ChatTemplate::try_render`] says why.
    pub fn render(&self, sample: &Sample) -> Rendered {
        self.try_render(sample).unwrap_or_default()
    }

    /// Renders a sample for training; only a Jinja template can fail.
    pub fn try_render(&self, sample: &Sample) -> Result<Rendered, String> {
        if let (Some(j), SampleBody::Chat(_) | SampleBody::Pair { .. }) = (self.jinja(), &sample.body) {
            let last_only = matches!(self.style, Style::Jinja { loss: LossOn::Last, .. });
            let (text, loss_spans) = j?.render_with_loss(&sample.turns(), last_only)?;
            return Ok(Rendered { text, loss_spans });
        }
        Ok(match &sample.body {
            SampleBody::Text(text) => self.render_text(text),
            _ => self.render_turns(&sample.turns(), false),
        })
    }

    /// Renders a conversation so far plus the opening of the assistant's (persona's) reply: the prompt
    /// for generation. Loss spans are those of the history.
    pub fn render_prompt(&self, turns: &[Turn]) -> Rendered {
        self.try_render_prompt(turns).unwrap_or_default()
    }

    /// [`ChatTemplate::render_prompt`]; only a Jinja template can fail.
    pub fn try_render_prompt(&self, turns: &[Turn]) -> Result<Rendered, String> {
        match self.jinja() {
            Some(j) => Ok(Rendered { text: j?.render(turns, true)?, loss_spans: Vec::new() }),
            None => Ok(self.render_turns(turns, true)),
        }
    }

    fn render_text(&self, text: &str) -> Rendered {
        let mut r = Rendered::default();
        match &self.style {
            Style::Roles { .. } | Style::Jinja { .. } => r.push_loss(text),
            Style::Speakers { persona, .. } => match text.rfind(persona.as_str()) {
                Some(i) => {
                    let cut = i + persona.len();
                    r.push(&text[..cut]);
                    r.push_loss(&text[cut..]);
                }
                None => r.push(text),
            },
        }
        r
    }

    fn render_turns(&self, turns: &[Turn], generation_prompt: bool) -> Rendered {
        let mut r = Rendered::default();
        match &self.style {
            Style::Jinja { .. } => {}
            Style::Roles { system, user, assistant, end, loss } => {
                let last_assistant = turns.iter().rposition(|t| t.role == Role::Assistant);
                for (i, t) in turns.iter().enumerate() {
                    let marker = match t.role {
                        Role::System => system,
                        Role::User => user,
                        Role::Assistant => assistant,
                    };
                    r.push(marker);
                    r.push("\n");
                    let learn = t.role == Role::Assistant
                        && !generation_prompt
                        && (*loss == LossOn::All || Some(i) == last_assistant);
                    if learn {
                        r.push_loss(&t.content);
                        r.push_loss(end);
                    } else {
                        if t.role == Role::User
                            && let Some(name) = t.name.as_deref().filter(|n| !n.is_empty())
                        {
                            r.push(name);
                            r.push(": ");
                        }
                        r.push(&t.content);
                        r.push(end);
                    }
                    r.push("\n");
                }
                if generation_prompt {
                    r.push(assistant);
                    r.push("\n");
                }
            }
            Style::Speakers { persona, sep, .. } => {
                let mut names: Vec<&str> = Vec::new();
                let last_persona = turns.iter().rposition(|t| t.role == Role::Assistant);
                let mut first = true;
                for (i, t) in turns.iter().enumerate() {
                    if !first {
                        r.push("\n");
                    }
                    first = false;
                    match t.role {
                        Role::System => {
                            r.push(&t.content);
                            r.push(" ");
                            r.push(sep);
                        }
                        Role::User => {
                            let name = t.name.as_deref().unwrap_or("");
                            let idx = names.iter().position(|n| *n == name).unwrap_or_else(|| {
                                names.push(name);
                                names.len() - 1
                            });
                            r.push(&self.speaker_marker(idx));
                            r.push(" ");
                            r.push(&t.content);
                        }
                        Role::Assistant => {
                            r.push(persona);
                            if Some(i) == last_persona && !generation_prompt {
                                r.push_loss(" ");
                                r.push_loss(&t.content);
                            } else {
                                r.push(" ");
                                r.push(&t.content);
                            }
                        }
                    }
                }
                if generation_prompt {
                    if !first {
                        r.push("\n");
                    }
                    r.push(persona);
                }
            }
        }
        r
    }

    /// A Jinja chat template equivalent to [`ChatTemplate::render_prompt`], for Hugging Face's
    /// `tokenizer_config.json` (`tokenizer.apply_chat_template`).
    pub fn to_jinja(&self) -> String {
        match &self.style {
            Style::Jinja { source, .. } => source.clone(),
            Style::Roles { system, user, assistant, end, .. } => format!(
                "{{% for message in messages %}}\
                 {{% if message['role'] == 'system' %}}{{{{ '{s}\\n' }}}}\
                 {{% elif message['role'] == 'user' %}}{{{{ '{u}\\n' }}}}{{% if message.get('name') %}}{{{{ message['name'] + ': ' }}}}{{% endif %}}\
                 {{% else %}}{{{{ '{a}\\n' }}}}{{% endif %}}\
                 {{{{ message['content'] + '{e}\\n' }}}}\
                 {{% endfor %}}\
                 {{% if add_generation_prompt %}}{{{{ '{a}\\n' }}}}{{% endif %}}",
                s = jinja_escape(system),
                u = jinja_escape(user),
                a = jinja_escape(assistant),
                e = jinja_escape(end),
            ),
            Style::Speakers { persona, speaker_prefix, speaker_suffix, max_speakers, sep } => format!(
                "{{% set ns = namespace(names=[], first=true) %}}\
                 {{% for message in messages %}}\
                 {{% if not ns.first %}}{{{{ '\\n' }}}}{{% endif %}}{{% set ns.first = false %}}\
                 {{% if message['role'] == 'system' %}}{{{{ message['content'] + ' {sep}' }}}}\
                 {{% elif message['role'] == 'user' %}}\
                 {{% set name = message.get('name') or '' %}}\
                 {{% if name not in ns.names %}}{{% set ns.names = ns.names + [name] %}}{{% endif %}}\
                 {{% set idx = [ns.names.index(name), {last}] | min %}}\
                 {{{{ '{p}' + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[idx] + '{x} ' + message['content'] }}}}\
                 {{% else %}}{{{{ '{persona} ' + message['content'] }}}}{{% endif %}}\
                 {{% endfor %}}\
                 {{% if add_generation_prompt %}}{{% if not ns.first %}}{{{{ '\\n' }}}}{{% endif %}}{{{{ '{persona}' }}}}{{% endif %}}",
                sep = jinja_escape(sep),
                p = jinja_escape(speaker_prefix),
                x = jinja_escape(speaker_suffix),
                persona = jinja_escape(persona),
                last = max_speakers.saturating_sub(1).min(25),
            ),
        }
    }
}

/// A string as a single-quoted Jinja literal.
fn jinja_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}
