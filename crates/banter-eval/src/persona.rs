//! `banter-eval persona`: the persona's held-out replies against each model's replies to the same contexts.

use std::collections::{BTreeMap, HashSet};

use banter_core::records::{Message, MessageKind, Role, Sample, Turn};
use banter_model::generate::Sampling;
use banter_quality::persona as samples;
use serde::Serialize;

use crate::figures::{self, Figures};
use crate::model::{Candidate, LoadSettings, Loaded, Nll};
use crate::ngram::Attributor;
use crate::split::Split;

/// Settings of a persona evaluation (the binary fills them from its flags).
#[derive(Debug, Clone)]
pub struct PersonaSettings {
    /// The persona, as the export spells the author.
    pub persona: String,
    /// Models to compare, the candidate first.
    pub candidates: Vec<Candidate>,
    /// Held-out contexts to answer (the first ones in time).
    pub max_samples: usize,
    /// Context turns per reply (as `banter-whatsapp samples --window`).
    pub window: usize,
    /// A participant needs this many training messages to get a profile.
    pub min_messages: usize,
    /// How replies are sampled.
    pub sampling: Sampling,
    /// Contexts answered together in one batch (1: one at a time).
    pub batch: usize,
    /// How models are loaded.
    pub load: LoadSettings,
}

/// One held-out context with the real and generated replies.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// When the real reply was written.
    pub ts: String,
    /// The context, `speaker: text` per turn (speakers anonymised as in training).
    pub context: Vec<String>,
    /// What the persona wrote.
    pub real: String,
    /// What each model wrote, in the candidates' order.
    pub generated: Vec<String>,
}

/// One model's results.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    /// `model` or `model + adapter`.
    pub name: String,
    /// The candidate.
    pub candidate: Candidate,
    /// Mean loss per token on the held-out samples (the real replies, training's masks).
    pub heldout_loss: f64,
    /// exp(loss).
    pub heldout_perplexity: f64,
    /// The figures of its replies.
    pub figures: Figures,
}

/// The classifier checked on the real held-out messages.
#[derive(Debug, Clone, Serialize)]
pub struct AttributorCheck {
    /// The participants with a profile, by training messages.
    pub participants: Vec<(String, usize)>,
    /// Share of all participants' held-out messages attributed to their real author.
    pub accuracy: f64,
    /// What picking the most active participant every time would score.
    pub chance: f64,
    /// Held-out messages checked.
    pub messages: usize,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct PersonaReport {
    /// The persona.
    pub persona: String,
    /// The split used, and where it came from.
    pub split: Split,
    /// `"--split FILE"`, `"recorded with the adapter"`, or `"computed (not recorded with the model)"`.
    pub split_source: String,
    /// Held-out contexts answered.
    pub samples: usize,
    /// The classifier and how well it tells the real participants apart.
    pub attributor: AttributorCheck,
    /// The figures of the persona's real held-out replies (the bar the models are measured against).
    pub real: Figures,
    /// Per model, the candidate first.
    pub models: Vec<ModelResult>,
    /// Contexts with the real and generated replies side by side.
    pub examples: Vec<Example>,
}

fn turns_text(turns: &[Turn]) -> Vec<String> {
    turns
        .iter()
        .map(|t| {
            let who = match t.role {
                Role::Assistant => "persona".to_string(),
                _ => t.name.clone().unwrap_or_else(|| t.role.as_str().to_string()),
            };
            format!("{who}: {}", t.content)
        })
        .collect()
}

/// Builds the held-out samples and the training part, measures each candidate.
pub fn evaluate(
    messages: &[Message],
    split: Split,
    split_source: String,
    s: &PersonaSettings,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<PersonaReport> {
    if !split.chat.is_empty() && !messages.iter().any(|m| m.chat == split.chat) {
        let chats: std::collections::BTreeSet<&str> = messages.iter().map(|m| m.chat.as_str()).collect();
        anyhow::bail!(banter_core::Error::usage(format!(
            "the split ({split_source}) is of the chat \"{}\", and these messages are of {:?}: evaluate on the chat the model was trained on, or pass --split",
            split.chat,
            chats.into_iter().collect::<Vec<_>>()
        )));
    }
    let text = |m: &&Message| m.kind == MessageKind::Text && m.author.is_some() && !m.text.trim().is_empty();
    // The training part by author, and the persona's training lines (for copies).
    let mut by_author: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut held: Vec<(String, String)> = Vec::new();
    for m in messages.iter().filter(text) {
        let a = m.author.clone().unwrap_or_default();
        if split.holds_out(&m.chat, &m.ts) {
            held.push((a, m.text.clone()));
        } else {
            by_author.entry(a).or_default().push(m.text.clone());
        }
    }
    if !by_author.contains_key(&s.persona) && !held.iter().any(|(a, _)| *a == s.persona) {
        let mut top: Vec<(&String, usize)> = by_author.iter().map(|(a, m)| (a, m.len())).collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.1));
        let names: Vec<String> = top.iter().take(8).map(|(a, n)| format!("{a} ({n})")).collect();
        anyhow::bail!(banter_core::Error::usage(format!(
            "no messages by \"{}\" (most active: {})",
            s.persona,
            names.join(", ")
        )));
    }
    let mut participants: Vec<(String, Vec<String>)> =
        by_author.into_iter().filter(|(a, m)| m.len() >= s.min_messages || *a == s.persona).collect();
    participants.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    if participants.len() < 2 {
        anyhow::bail!(banter_core::Error::usage(format!(
            "attribution needs two participants with {} or more messages before the held-out part (from {}); the chat has {}",
            s.min_messages,
            split.cutoff,
            participants.len()
        )));
    }
    let persona = participants.iter().position(|(a, _)| *a == s.persona).ok_or_else(|| {
        banter_core::Error::usage(format!("\"{}\" wrote nothing before the held-out part", s.persona))
    })?;
    let training: HashSet<String> = participants[persona].1.iter().map(|t| crate::stats::norm(t)).collect();
    let attributor = Attributor::fit(&participants);
    let index: BTreeMap<&str, usize> = participants.iter().enumerate().map(|(i, (a, _))| (a.as_str(), i)).collect();
    let checked: Vec<&(String, String)> = held.iter().filter(|(a, _)| index.contains_key(a.as_str())).collect();
    let right = checked.iter().filter(|(a, t)| attributor.attribute(t) == Some(index[a.as_str()])).count();
    let top_share = |set: &[&(String, String)]| -> f64 {
        let mut c: BTreeMap<&str, usize> = BTreeMap::new();
        set.iter().for_each(|(a, _)| *c.entry(a.as_str()).or_default() += 1);
        c.values().max().copied().unwrap_or(0) as f64 / set.len().max(1) as f64
    };
    let check = AttributorCheck {
        participants: participants.iter().map(|(a, m)| (a.clone(), m.len())).collect(),
        accuracy: right as f64 / checked.len().max(1) as f64,
        chance: top_share(&checked),
        messages: checked.len(),
    };

    // Held-out samples: built exactly as `banter-whatsapp samples` builds training samples.
    let opts = samples::Options { window: s.window, ..samples::Options::defaults(s.persona.clone()) };
    let (built, _) = samples::build(messages, &opts);
    let meta = |x: &Sample, k: &str| x.fields.get("meta").and_then(|m| m[k].as_str()).unwrap_or_default().to_string();
    let heldout: Vec<Sample> =
        built.into_iter().filter(|x| split.holds_out(&meta(x, "chat"), &meta(x, "ts"))).take(s.max_samples).collect();
    if heldout.is_empty() {
        anyhow::bail!(banter_core::Error::usage(format!(
            "no reply of \"{}\" with context in the held-out part (from {})",
            s.persona, split.cutoff
        )));
    }
    let real: Vec<String> =
        heldout.iter().map(|x| x.turns().last().map(|t| t.content.clone()).unwrap_or_default()).collect();
    let real_figures = figures::measure(&real, &real, &attributor, persona, &training);
    let mut examples: Vec<Example> = heldout
        .iter()
        .zip(&real)
        .map(|(x, r)| {
            let t = x.turns();
            Example {
                ts: meta(x, "ts"),
                context: turns_text(&t[..t.len() - 1]),
                real: r.clone(),
                generated: Vec::new(),
            }
        })
        .collect();

    let mut models = Vec::new();
    for c in &s.candidates {
        progress(&format!("{}: loading", c.name()));
        let m = Loaded::load(c, &s.load)?;
        let mut nll = Nll::default();
        for x in &heldout {
            let refused = |e: String| {
                banter_core::Error::Template(format!("{}: held-out reply at {}: {e}", c.name(), meta(x, "ts")))
            };
            let l = m.loss(x).map_err(refused)?;
            nll.sum += l.sum;
            nll.tokens += l.tokens;
        }
        // Replies in batches; reply i is sampled with seed + i whatever the batch size.
        let mut replies = Vec::with_capacity(heldout.len());
        let idx: Vec<usize> = (0..heldout.len()).collect();
        for chunk in idx.chunks(s.batch.max(1)) {
            let convs: Vec<Vec<banter_core::records::Turn>> = chunk
                .iter()
                .map(|&i| {
                    let t = heldout[i].turns();
                    t[..t.len() - 1].to_vec()
                })
                .collect();
            let seeds: Vec<u64> = chunk.iter().map(|&i| s.sampling.seed.wrapping_add(i as u64)).collect();
            for (&i, r) in chunk.iter().zip(m.reply_batch(&convs, &s.sampling, &seeds)) {
                let r = r.map_err(|e| {
                    banter_core::Error::Template(format!(
                        "{}: held-out reply at {}: {e}",
                        c.name(),
                        meta(&heldout[i], "ts")
                    ))
                })?;
                examples[i].generated.push(r.clone());
                replies.push(r);
            }
            progress(&format!("{}: {}/{} replies", c.name(), replies.len(), heldout.len()));
        }
        let figures = figures::measure(&replies, &real, &attributor, persona, &training);
        models.push(ModelResult {
            name: c.name(),
            candidate: c.clone(),
            heldout_loss: nll.mean(),
            heldout_perplexity: nll.mean().exp(),
            figures,
        });
    }
    Ok(PersonaReport {
        persona: s.persona.clone(),
        split,
        split_source,
        samples: heldout.len(),
        attributor: check,
        real: real_figures,
        models,
        examples,
    })
}
