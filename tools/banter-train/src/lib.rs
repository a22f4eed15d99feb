//! `banter-train`: the command line over banter-trainer — flags and `--config-file` (JSON or YAML) →
//! [`banter_trainer::TrainSettings`] → [`banter_trainer::train`] → the report.

mod alloc;
pub mod args;
mod config_file;

pub use args::{Cli, DpoLossChoice, Init, parse_args};
pub use config_file::args as config_file_args;

use banter_core::cli;
use banter_core::{CancelToken, Exit, interrupt};
use banter_trainer::{Console, Outcome};

/// The tool's name.
pub const TOOL: &str = banter_trainer::TOOL;

pub(crate) const EXAMPLES: &str = "\
Examples:
  banter-train blocks.jsonl --init scratch --config tiny --tokenizer tokenizer.json -o model
  banter-train clean.jsonl --model gpt2-dir --lora -o persona-adapter
  banter-train clean.jsonl --model qwen2.5-0.5b-dir --lora --lora-targets all-linear -o qwen-adapter
  banter-train blocks.jsonl --init scratch --config llama.json --tokenizer tokenizer.json -o model   # model_type: llama
  banter-train clean.jsonl --model persona-model --epochs 3 --val-split 0.1 --early-stopping 3 -o persona-model-2
  banter-train --config-file train.json            # every flag, as JSON keys (unknown keys are an error)
  banter-train --config-file config.yaml           # YAML too, flat or with model/training sections
  banter-train blocks.jsonl ... -o model --resume   # continue from the newest checkpoint in model/
  banter-train data.jsonl ... -o model --sample-prompt 'Once upon a time'   # show a generation at the end
  banter-train ranked.jsonl --dpo --model persona-model --lora -o persona-dpo   # preference tuning (DPO)
  banter-train prefs.jsonl --dpo --loss ipo --beta 0.5 --model persona-model -o persona-dpo --val-split 0.1
  banter-train new.jsonl --model persona-model -o persona-model   # retrain in place (swapped in when done)
  banter-train clean.jsonl --model qwen2.5-0.5b-dir --gradient-checkpointing -o tuned   # less memory, same loss
  torchrun --no-python --nproc-per-node 4 banter-train blocks.jsonl --model m --lora -o out   # 4 ranks (docs/distributed.md)
  torchrun --no-python --nproc-per-node 8 --max-restarts 3 banter-train tokens.json --model m --device cuda --zero1 -o out
  banter-train --dataset OpenAssistant/oasst1 --model gpt2 --lora -o oasst-adapter   # a Hub dataset's train split
  banter-train chats.txt --model persona-model -o tuned   # User:/Assistant: transcripts read as conversations

Exit codes: 0 trained; 1 data quality below the gate (--force overrides); 2 usage; 3 bad data; 4 I/O;
5 model or runtime (libtorch, CUDA, NaN loss); 130 interrupted (a checkpoint is saved first).";

/// `banter-train --version`: banter's version, the libtorch version and whether CUDA is available.
pub(crate) fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| format!("{} ({})", banter_core::VERSION, banter_model::runtime::RuntimeInfo::query()))
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    if let Some(t) = cli.threads {
        tch::set_num_threads(t.max(1));
    }
    let mut settings = cli.settings();
    // Started by torchrun (RANK, WORLD_SIZE, …): one rank of a data-parallel run. Only rank 0 reports.
    settings.dist = banter_dist::Launch::from_env().map_err(|e| banter_core::Error::usage(e.to_string()))?;
    let rank = settings.dist.as_ref().map_or(0, |l| l.rank);
    // `--model user/name[@revision]` (and `--adapter`): from the Hugging Face cache, downloaded if missing.
    let mut hub = banter_hub::HubSettings::from_env();
    hub.progress = cli.common.progress_enabled();
    if let Some(m) = &settings.model {
        settings.model = Some(banter_hub::resolve_model(m, &hub)?);
    }
    if let Some(a) = &settings.lora.adapter {
        settings.lora.adapter = Some(banter_hub::resolve_model(a, &hub)?);
    }
    // `--dataset user/name[:split]`: the split's data files, through the same cache and offline rules.
    for d in &cli.dataset {
        let spec = banter_hub::dataset::DatasetSpec::parse(d).ok_or_else(|| {
            banter_core::Error::usage_hint(
                format!("--dataset {d:?} is not a Hub dataset name"),
                "give user/name[:split][@revision]",
            )
        })?;
        let files = banter_hub::dataset::fetch(&spec, &hub)?;
        settings.hub_data.push((d.clone(), files));
    }
    let console =
        Console { quiet: cli.common.quiet || rank != 0, progress: cli.common.progress_enabled() && rank == 0 };
    // Ctrl-C: finish the step, write a checkpoint, exit 130 (a second Ctrl-C quits at once).
    interrupt::set_cooperative(true);
    match banter_trainer::train(&settings, console, &CancelToken::interrupt())? {
        Outcome::Cancelled { .. } if rank != 0 => Ok(Exit::Interrupted),
        Outcome::Cancelled { step, checkpoint } => {
            cli.common.say(format!(
                "{TOOL}: interrupted at step {step}; checkpoint saved in {} (continue with --resume)",
                checkpoint.display()
            ));
            Ok(Exit::Interrupted)
        }
        Outcome::Trained(_) if rank != 0 => Ok(Exit::Success),
        Outcome::Trained(r) => {
            if cli.common.json {
                cli::print_report(&cli::report(TOOL, Exit::Success, serde_json::to_value(&r)?))?;
            } else {
                let best = r
                    .best_val_loss
                    .map(|b| format!(", best validation loss {b:.4} (ppl {:.2})", b.exp()))
                    .unwrap_or_default();
                cli.common.say(format!(
                    "{TOOL}: trained {} steps in {:.1} s, final loss {:.4}{best} → {}",
                    r.steps,
                    r.seconds,
                    r.final_loss,
                    r.output.display()
                ));
                if !r.added_tokens.is_empty() {
                    let load = if r.lora {
                        format!(
                            "; before PeftModel.from_pretrained, resize the base: model.resize_token_embeddings({})",
                            r.vocab_size
                        )
                    } else {
                        String::new()
                    };
                    cli.common.say(format!(
                        "{TOOL}: added {} token(s) to the vocabulary ({}), now {} rows{load}",
                        r.added_tokens.len(),
                        r.added_tokens.join(" "),
                        r.vocab_size
                    ));
                }
                if let Some(s) = &r.sample {
                    // The generation is the point of --sample-prompt: shown even with --quiet.
                    banter_core::eline!("{TOOL}: sample: {}{s}", cli.sample_prompt.as_deref().unwrap_or_default());
                }
            }
            Ok(Exit::Success)
        }
    }
}
