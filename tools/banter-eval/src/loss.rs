//! `banter-eval loss MODEL DATA… [--adapter A]… [--model B]…`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use banter_core::Exit;
use banter_core::cli::CommonArgs;
use banter_core::jsonl::{JsonlReader, ReadOptions, Source};
use banter_core::records::Sample;
use banter_eval_lib::Candidate;
use banter_eval_lib::loss::{self, Scored};

use crate::{ModelArgs, TOOL};

#[derive(Debug, Args)]
pub(crate) struct LossArgs {
    /// The model folder (a base, or a fully trained model).
    model: PathBuf,
    /// Samples JSONL (chat, pair or text samples, as banter-train reads them); `-` for stdin.
    #[arg(required = true)]
    data: Vec<String>,
    /// A PEFT adapter on MODEL, evaluated beside MODEL alone (repeat for several).
    #[arg(long)]
    adapter: Vec<PathBuf>,
    /// Another model to evaluate beside MODEL (repeat for several).
    #[arg(long = "model")]
    models: Vec<PathBuf>,
    /// Exit 1 when the candidate's loss (the first adapter's, else MODEL's) is above this.
    #[arg(long)]
    max_loss: Option<f64>,
    /// Exit 1 unless the candidate's loss is below this model's or adapter's (an adapter goes on MODEL).
    #[arg(long, value_name = "DIR")]
    better_than: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    load: ModelArgs,
}

fn read_samples(files: &[String]) -> anyhow::Result<Vec<Scored>> {
    let mut out = Vec::new();
    for f in files {
        let src = Source::parse(f);
        let reader = JsonlReader::open(&src, ReadOptions::default())?;
        let name = reader.name().to_string();
        for line in reader.records::<Sample>() {
            let line = line?;
            out.push(Scored { at: format!("{name}:{}", line.line), sample: line.record });
        }
    }
    if out.is_empty() {
        anyhow::bail!(banter_core::exit::Coded::new(Exit::BadInput, format!("{}: no samples", files.join(", "))));
    }
    Ok(out)
}

pub(crate) fn run(a: &LossArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let model = crate::existing(&a.model, "model")?;
    for d in a.adapter.iter().chain(&a.models).chain(&a.better_than) {
        crate::existing(d, "model or adapter")?;
    }
    let samples = read_samples(&a.data)?;
    crate::check_output(a.html.as_deref())?;
    let mut cands: Vec<Candidate> =
        a.adapter.iter().map(|ad| Candidate { model: model.clone(), adapter: Some(ad.clone()) }).collect();
    cands.push(Candidate { model: model.clone(), adapter: None });
    cands.extend(a.models.iter().map(|m| Candidate { model: m.clone(), adapter: None }));
    let other = a.better_than.as_ref().map(|d| Candidate::from_dir(d, &model));
    if let Some(o) = &other
        && !cands.contains(o)
    {
        cands.push(o.clone());
    }
    let results = loss::evaluate(&cands, &samples, &a.load.settings(), &mut crate::progress(common))?;
    let cand = &results[0];
    let mut failed: Vec<String> = Vec::new();
    if let Some(max) = a.max_loss
        && !crate::holds(cand.loss, max, true)
    {
        failed.push(format!("loss {:.4} is above --max-loss {max}", cand.loss));
    }
    if let Some(o) = &other {
        let theirs = results.iter().find(|r| r.candidate == *o).map_or(f64::NAN, |r| r.loss);
        if !crate::holds(cand.loss, theirs, false) {
            failed.push(format!("loss {:.4} is not below {}'s {theirs:.4}", cand.loss, o.name()));
        }
    }
    let code = if failed.is_empty() { Exit::Success } else { Exit::GateFailed };
    if let Some(p) = &a.html {
        crate::write_page(p, &banter_eval_lib::html::loss(&results, &a.data))?;
    }
    if !common.quiet {
        let w = results.iter().map(|r| r.name.chars().count()).max().unwrap_or(5).max(5);
        let mut s = format!(
            "{TOOL}: {} sample(s)\n{:<w$}  {:>8}  {:>10}  {:>8}\n",
            samples.len(),
            "model",
            "loss",
            "perplexity",
            "tokens"
        );
        for r in &results {
            s.push_str(&format!("{:<w$}  {:>8.4}  {:>10.2}  {:>8}\n", r.name, r.loss, r.perplexity, r.tokens));
        }
        for f in &failed {
            s.push_str(&format!("gate failed: {} {f}\n", cand.name));
        }
        eprint!("{s}");
    }
    if common.json {
        let per_file: Vec<&str> = samples.iter().map(|s| s.at.as_str()).collect();
        banter_core::cli::print_report(&banter_core::cli::report(
            TOOL,
            code,
            json!({"samples": per_file, "models": results, "candidate": cand.name, "gate": {"passed": failed.is_empty(), "failed": failed}}),
        ))?;
    }
    Ok(code)
}
