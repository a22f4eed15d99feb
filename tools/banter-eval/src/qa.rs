//! `banter-eval qa MODEL QA.jsonl`: `{"question", "answer"}` or `{"question", "answers": [...]}` lines, or
//! two-turn chat samples (the user's question, the assistant's answer).

use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};

use banter_core::Exit;
use banter_core::cli::CommonArgs;
use banter_core::exit::Coded;
use banter_core::jsonl::{JsonlReader, ReadOptions, Source};
use banter_core::records::{Role, Turn};
use banter_eval_lib::Candidate;
use banter_eval_lib::model::Loaded;
use banter_eval_lib::qa::{self, Answered};

use crate::{ModelArgs, TOOL};

#[derive(Debug, Args)]
pub(crate) struct QaArgs {
    /// The model folder.
    model: PathBuf,
    /// Question/answer JSONL; `-` for stdin.
    data: String,
    /// A PEFT adapter on MODEL.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Ask as plain text (`Question: …\nAnswer:`) instead of through the chat template.
    #[arg(long)]
    plain: bool,
    /// New tokens per answer at most.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Exit 1 when the mean token F1 is below this.
    #[arg(long)]
    min_f1: Option<f64>,
    /// Exit 1 when the exact-match share is below this.
    #[arg(long)]
    min_exact_match: Option<f64>,
    #[command(flatten)]
    load: ModelArgs,
}

fn field<'a>(v: &'a Value, at: &str, name: &str) -> anyhow::Result<&'a str> {
    v[name]
        .as_str()
        .ok_or_else(|| Coded::new(Exit::BadInput, format!("{at}: field \"{name}\": expected a string")).into())
}

/// (question, accepted answers) of one line.
fn pair(v: &Value, at: &str) -> anyhow::Result<(String, Vec<String>)> {
    if let Some(turns) = v["messages"].as_array() {
        let text = |role: &str| turns.iter().find(|t| t["role"] == role).and_then(|t| t["content"].as_str());
        return match (text("user"), text("assistant")) {
            (Some(q), Some(a)) => Ok((q.to_string(), vec![a.to_string()])),
            _ => {
                Err(Coded::new(Exit::BadInput, format!("{at}: field \"messages\": needs a user and an assistant turn"))
                    .into())
            }
        };
    }
    let q = field(v, at, "question")?.to_string();
    let answers: Vec<String> = match &v["answers"] {
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => vec![field(v, at, "answer")?.to_string()],
    };
    if answers.is_empty() {
        anyhow::bail!(Coded::new(Exit::BadInput, format!("{at}: field \"answers\": expected strings")));
    }
    Ok((q, answers))
}

pub(crate) fn run(a: &QaArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let model = crate::existing(&a.model, "model")?;
    if let Some(d) = &a.adapter {
        crate::existing(d, "adapter")?;
    }
    let src = Source::parse(&a.data);
    let reader = JsonlReader::open(&src, ReadOptions::default())?;
    let name = reader.name().to_string();
    let mut items = Vec::new();
    for line in reader.records::<Value>() {
        let line = line?;
        items.push(pair(&line.record, &format!("{name}:{}", line.line))?);
    }
    if items.is_empty() {
        anyhow::bail!(Coded::new(Exit::BadInput, format!("{name}: no questions")));
    }
    let cand = Candidate { model, adapter: a.adapter.clone() };
    let m = Loaded::load(&cand, &a.load.settings())?;
    let s =
        banter_model::generate::Sampling { temperature: 0.0, max_new_tokens: a.max_new_tokens, ..Default::default() };
    let mut out: Vec<Answered> = Vec::new();
    for (q, answers) in items {
        let generated = if a.plain {
            m.complete(&format!("Question: {q}\nAnswer:"), &s)
        } else {
            m.reply(&[Turn::new(Role::User, q.clone())], &s).map_err(banter_core::Error::usage)?
        };
        let em = qa::best(&generated, &answers, qa::exact_match);
        let f1 = qa::best(&generated, &answers, qa::f1);
        out.push(Answered { question: q, answers, generated, exact_match: em, f1 });
    }
    let n = out.len() as f64;
    let em = out.iter().map(|x| x.exact_match).sum::<f64>() / n;
    let f1 = out.iter().map(|x| x.f1).sum::<f64>() / n;
    let mut failed = Vec::new();
    if let Some(min) = a.min_f1
        && !crate::holds(min, f1, true)
    {
        failed.push(format!("token F1 {f1:.3} is below --min-f1 {min}"));
    }
    if let Some(min) = a.min_exact_match
        && !crate::holds(min, em, true)
    {
        failed.push(format!("exact match {em:.3} is below --min-exact-match {min}"));
    }
    let code = if failed.is_empty() { Exit::Success } else { Exit::GateFailed };
    if !common.quiet {
        eprintln!(
            "{TOOL}: {}: {} question(s): exact match {:.1}%, token F1 {:.3}",
            cand.name(),
            out.len(),
            em * 100.0,
            f1
        );
        for f in &failed {
            eprintln!("gate failed: {f}");
        }
    }
    if common.json {
        banter_core::cli::print_report(&banter_core::cli::report(
            TOOL,
            code,
            json!({"model": cand.name(), "questions": out.len(), "exact_match": em, "f1": f1, "answers": out,
                   "gate": {"passed": failed.is_empty(), "failed": failed}}),
        ))?;
    }
    Ok(code)
}
