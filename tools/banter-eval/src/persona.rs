//! `banter-eval persona MODEL --messages M --persona NAME [--adapter A]`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use banter_core::Exit;
use banter_core::cli::CommonArgs;
use banter_eval_lib::persona::{self, PersonaReport, PersonaSettings};
use banter_eval_lib::{Candidate, Split};

use crate::{ModelArgs, SampleArgs, TOOL};

#[derive(Debug, Args)]
pub(crate) struct PersonaArgs {
    /// The model folder (the base the adapter was trained on, or a fully trained persona model).
    model: PathBuf,
    /// The persona's PEFT adapter on MODEL.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The chat's messages JSONL (`banter-whatsapp parse`), all of it: the split picks the held-out part.
    #[arg(long, required = true)]
    messages: String,
    /// The persona, as the export spells the author.
    #[arg(long, required = true)]
    persona: String,
    /// The split file (`banter-eval split`); default: the one recorded with the adapter or model.
    #[arg(long)]
    split: Option<PathBuf>,
    /// With no split recorded or given: hold out this share of the chat, the last messages by time.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Held-out contexts to answer (the first ones in time).
    #[arg(long, default_value_t = 40)]
    samples: usize,
    /// Context turns per reply (as `banter-whatsapp samples --window`).
    #[arg(long, default_value_t = 6)]
    window: usize,
    /// A participant needs this many training messages for a style profile.
    #[arg(long, default_value_t = 5)]
    min_messages: usize,
    /// Held-out contexts answered together in one batch (each weight read once per step for all of them).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Do not evaluate MODEL without the adapter beside it.
    #[arg(long)]
    no_base: bool,
    /// Exit 1 when less than this share of the generated replies is attributed to the persona.
    #[arg(long, value_name = "SHARE")]
    min_attribution: Option<f64>,
    /// Exit 1 unless the candidate's attribution is above this model's or adapter's (an adapter goes on MODEL).
    #[arg(long, value_name = "DIR")]
    better_than: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    sample: SampleArgs,
    #[command(flatten)]
    load: ModelArgs,
}

/// The split: `--split`, else the one recorded with the adapter (or the model), else computed.
fn split_for(a: &PersonaArgs, messages: &[banter_core::records::Message]) -> anyhow::Result<(Split, String)> {
    let bad = |e: banter_eval_lib::split::SplitError| banter_core::Error::usage(e.to_string());
    if let Some(p) = &a.split {
        return Ok((Split::read(p).map_err(bad)?, format!("--split {}", p.display())));
    }
    for dir in a.adapter.iter().chain(std::iter::once(&a.model)) {
        if let Some(s) = Split::recorded(dir).map_err(bad)? {
            return Ok((s, format!("recorded with {}", dir.display())));
        }
    }
    let s = Split::of(messages, a.holdout).map_err(bad)?;
    Ok((s, "computed here (none recorded with the model: its training may have seen these messages)".into()))
}

fn summary(r: &PersonaReport, failed: &[String]) -> String {
    let mut s = format!(
        "{TOOL}: persona {}: {} held-out contexts from {} ({})\n  attribution classifier on real held-out messages: {:.0}% right (chance {:.0}%, {} participants)\n",
        r.persona,
        r.samples,
        r.split.cutoff,
        r.split_source,
        r.attributor.accuracy * 100.0,
        r.attributor.chance * 100.0,
        r.attributor.participants.len()
    );
    let w = r.models.iter().map(|m| m.name.chars().count()).max().unwrap_or(4).max(12);
    s.push_str(&format!(
        "  {:<w$}  {:>11}  {:>10}  {:>8}  {:>10}  {:>6}\n",
        "", "attribution", "style dist", "loss", "distinct-2", "copied"
    ));
    s.push_str(&format!(
        "  {:<w$}  {:>10.0}%  {:>10.3}  {:>8}  {:>10.3}  {:>5.0}%\n",
        "real replies",
        r.real.attribution * 100.0,
        r.real.style_distance,
        "",
        r.real.diversity.distinct_2,
        r.real.diversity.copied_share * 100.0
    ));
    for m in &r.models {
        s.push_str(&format!(
            "  {:<w$}  {:>10.0}%  {:>10.3}  {:>8.4}  {:>10.3}  {:>5.0}%\n",
            m.name,
            m.figures.attribution * 100.0,
            m.figures.style_distance,
            m.heldout_loss,
            m.figures.diversity.distinct_2,
            m.figures.diversity.copied_share * 100.0
        ));
        for l in &m.figures.diversity.memorised {
            s.push_str(&format!("    memorised line: {l}\n"));
        }
    }
    for f in failed {
        s.push_str(&format!("gate failed: {f}\n"));
    }
    s
}

pub(crate) fn run(a: &PersonaArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let model = crate::existing(&a.model, "model")?;
    if let Some(ad) = &a.adapter {
        crate::existing(ad, "adapter")?;
    }
    if let Some(d) = &a.better_than {
        crate::existing(d, "--better-than")?;
    }
    if let Some(p) = &a.split {
        banter_core::inputs::register_path(p);
    }
    let messages = crate::split::read_messages(&a.messages)?;
    crate::check_output(a.html.as_deref())?;
    let (split, source) = split_for(a, &messages)?;
    let mut candidates = vec![Candidate { model: model.clone(), adapter: a.adapter.clone() }];
    if a.adapter.is_some() && !a.no_base {
        candidates.push(Candidate { model: model.clone(), adapter: None });
    }
    let other = a.better_than.as_ref().map(|d| Candidate::from_dir(d, &model));
    if let Some(o) = &other
        && !candidates.contains(o)
    {
        candidates.push(o.clone());
    }
    let settings = PersonaSettings {
        persona: a.persona.clone(),
        candidates,
        max_samples: a.samples.max(1),
        window: a.window.max(1),
        min_messages: a.min_messages.max(1),
        sampling: a.sample.sampling(),
        batch: a.batch.max(1),
        load: a.load.settings(),
    };
    let report = persona::evaluate(&messages, split, source, &settings, &mut crate::progress(common))?;
    let cand = &report.models[0];
    let mut failed = Vec::new();
    if let Some(min) = a.min_attribution
        && !crate::holds(min, cand.figures.attribution, true)
    {
        failed.push(format!(
            "{}: attribution {:.3} is below --min-attribution {min}",
            cand.name, cand.figures.attribution
        ));
    }
    if let Some(o) = &other {
        let theirs = report.models.iter().find(|m| m.candidate == *o).map_or(f64::NAN, |m| m.figures.attribution);
        if !crate::holds(theirs, cand.figures.attribution, false) {
            failed.push(format!(
                "{}: attribution {:.3} is not above {}'s {theirs:.3}",
                cand.name,
                cand.figures.attribution,
                o.name()
            ));
        }
    }
    let code = if failed.is_empty() { Exit::Success } else { Exit::GateFailed };
    if let Some(p) = &a.html {
        crate::write_page(p, &banter_eval_lib::html::persona(&report))?;
    }
    if !common.quiet {
        eprint!("{}", summary(&report, &failed));
    }
    if common.json {
        banter_core::cli::print_report(&banter_core::cli::report(
            TOOL,
            code,
            json!({"persona": report, "gate": {"passed": failed.is_empty(), "failed": failed}}),
        ))?;
    }
    Ok(code)
}
