//! Hugging Face chat templates (`tokenizer_config.json`'s `chat_template`, or `chat_template.jinja`)
//! rendered as transformers' `apply_chat_template` renders them: Jinja (minijinja, with Python's string
//! methods) with `trim_blocks` and `lstrip_blocks`, `raise_exception`, `messages`, `add_generation_prompt`,
//! `bos_token` and `eos_token`.
//!
//! Loss masks for any such template come from rendering prefixes: the conversation up to an assistant turn
//! with the generation prompt, then with that turn — what the second adds after the first is the reply the
//! model learns to say (its end-of-turn marker included).

use std::ops::Range;
use std::path::Path;

use minijinja::{Environment, ErrorKind, context};

use crate::records::{Role, Turn};

/// Words every error of a template that ran out of fuel carries: the template is broken for any input, so
/// tools stop at once (exit 2) instead of reporting each record.
pub const WORK_LIMIT: &str = "work limit";

/// The work one render may do, in minijinja's fuel (about one per instruction, and one per 64 bytes of
/// data the template creates): a fixed allowance plus a share per turn and per byte of the conversation.
/// A template that loops without end (`range(100000)` nested) or grows a string by doubling runs out of
/// fuel in well under a second and ~100 MB, and fails with a template error instead.
pub fn fuel_for(turns: usize, bytes: usize) -> u64 {
    2_000_000 + 400 * turns as u64 + bytes as u64 / 8
}

/// A compiled template with its special tokens.
#[derive(Debug)]
pub struct Jinja {
    env: std::cell::RefCell<Environment<'static>>,
    bos: String,
    eos: String,
}

impl Jinja {
    /// Compiles `source`; a syntax error is returned with its line.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<Self, String> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| format!("chat template: {e}"))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned("chat", source.to_string()).map_err(|e| format!("chat template: {e}"))?;
        Ok(Jinja { env: std::cell::RefCell::new(env), bos: bos.to_string(), eos: eos.to_string() })
    }

    /// The conversation as the template writes it.
    pub fn render(&self, turns: &[Turn], add_generation_prompt: bool) -> Result<String, String> {
        let messages: Vec<minijinja::Value> = turns
            .iter()
            .map(|t| match t.name.as_deref() {
                Some(n) => context! { role => t.role.as_str(), content => &t.content, name => n },
                None => context! { role => t.role.as_str(), content => &t.content },
            })
            .collect();
        let bytes: usize = turns.iter().map(|t| t.content.len() + t.name.as_ref().map_or(0, String::len)).sum();
        let fuel = fuel_for(turns.len(), bytes);
        let mut env = self.env.borrow_mut();
        env.set_fuel(Some(fuel));
        let tmpl = env.get_template("chat").map_err(|e| e.to_string())?;
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos,
            eos_token => &self.eos,
        })
        .map_err(|e| match e.kind() {
            ErrorKind::OutOfFuel => format!(
                "chat template: stopped after its {WORK_LIMIT} ({fuel} steps, about {} MB of text): the template loops or grows text without bound",
                fuel * 64 / 1_000_000
            ),
            _ => format!("chat template: {e}"),
        })
    }

    /// The conversation and the byte ranges of the assistant turns that carry loss (`last_only`: the last
    /// one). A reply the template does not write as a suffix of its prompt is found by its text.
    pub fn render_with_loss(&self, turns: &[Turn], last_only: bool) -> Result<(String, Vec<Range<usize>>), String> {
        let text = self.render(turns, false)?;
        let last = turns.iter().rposition(|t| t.role == Role::Assistant);
        let mut spans: Vec<Range<usize>> = Vec::new();
        for (i, t) in turns.iter().enumerate() {
            if t.role != Role::Assistant || (last_only && Some(i) != last) {
                continue;
            }
            let prompt = self.render(&turns[..i], true)?;
            let with = self.render(&turns[..=i], false)?;
            let from = spans.last().map_or(0, |s| s.end);
            let span = match with.strip_prefix(prompt.as_str()) {
                Some(reply) if text.starts_with(&with) && !reply.is_empty() => prompt.len()..with.len(),
                _ => {
                    let at = text[from..].find(t.content.as_str()).ok_or_else(|| {
                        format!("chat template: assistant turn {} is not in the rendered text", i + 1)
                    })?;
                    from + at..from + at + t.content.len()
                }
            };
            if span.start < from {
                return Err("chat template: assistant turns render out of order".into());
            }
            spans.push(span);
        }
        Ok((text, spans))
    }
}

/// Today's date in the `strftime` fields chat templates use (`%d %b %Y`, …), as transformers passes it.
fn strftime_now(fmt: String) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (y, m, d) = crate::util::civil_from_days(secs.div_euclid(86_400));
    let month = MONTHS[(m as usize).clamp(1, 12) - 1];
    fmt.replace("%d", &format!("{d:02}"))
        .replace("%m", &format!("{m:02}"))
        .replace("%Y", &y.to_string())
        .replace("%B", month)
        .replace("%b", &month[..3])
}

/// The chat template a Hugging Face model directory ships: `chat_template.jinja`, else
/// `tokenizer_config.json`'s `chat_template` (a string, or a list of named templates: `default`), with the
/// config's `bos_token`/`eos_token`. `None` when there is none.
pub fn from_model_dir(dir: &Path) -> Result<Option<(String, String, String)>, String> {
    let config: serde_json::Value = match std::fs::read_to_string(dir.join("tokenizer_config.json")) {
        Ok(t) => {
            serde_json::from_str(&t).map_err(|e| format!("{}: {e}", dir.join("tokenizer_config.json").display()))?
        }
        Err(_) => serde_json::Value::Null,
    };
    let token = |k: &str| match &config[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).unwrap_or("").to_string(),
        _ => String::new(),
    };
    let source = match std::fs::read_to_string(dir.join("chat_template.jinja")) {
        Ok(s) => Some(s),
        Err(_) => match &config["chat_template"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(list) => list
                .iter()
                .find(|t| t["name"] == "default")
                .or_else(|| list.first())
                .and_then(|t| t["template"].as_str())
                .map(str::to_string),
            _ => None,
        },
    };
    // An empty template is no template (transformers treats it as unset).
    Ok(source.filter(|s| !s.trim().is_empty()).map(|s| (s, token("bos_token"), token("eos_token"))))
}
