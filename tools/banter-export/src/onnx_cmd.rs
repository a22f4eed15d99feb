//! `banter-export onnx`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use banter_convert::StagedDir;
use banter_convert::onnx::{self, OnnxSettings, verify};
use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

use crate::{ModelIn, TOOL, out_path};

/// `banter-export onnx MODEL -o DIR`.
#[derive(Debug, Args)]
pub struct OnnxArgs {
    #[command(flatten)]
    pub model: ModelIn,
    /// The output directory (replaced whole when the export succeeds).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Linear weights as int8 (per output channel; activations quantized at run time): ~4× smaller.
    #[arg(long)]
    pub int8: bool,
    /// Weights in model.onnx_data beside the graph (default: only above 1.8 GiB).
    #[arg(long)]
    pub external_data: bool,
    /// Run the export in onnxruntime against banter on a few prompts (logits, KV cache, greedy); a
    /// mismatch exits 1 and leaves the previous output in place.
    #[arg(long)]
    pub verify: bool,
    /// --verify's bound on logits, relative to max(1, the largest |logit|).
    #[arg(long, value_name = "X", default_value_t = 1e-4)]
    pub tolerance: f64,
    /// --verify's greedy tokens.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub verify_steps: usize,
}

pub fn run(a: &OnnxArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let out = out_path(&a.output)?;
    let t0 = Instant::now();
    let src = a.model.load(common, out)?;
    let stage = StagedDir::new(out)?;
    let s = OnnxSettings { int8: a.int8, external_data: a.external_data.then_some(true) };
    let report = onnx::export(&src, &s, stage.path())?;
    let export_secs = t0.elapsed().as_secs_f64();
    let checked = if a.verify {
        let vs = verify::VerifySettings { python: None, tolerance: a.tolerance, steps: a.verify_steps, int8: a.int8 };
        Some(verify::verify(&src, stage.path(), &vs)?)
    } else {
        None
    };
    banter_core::interrupt::check()?;
    stage.commit()?;
    if common.json {
        cli::print_report(&cli::report(
            TOOL,
            Exit::Success,
            json!({"command": "onnx", "output": out, "export": report, "export_secs": export_secs, "verify": checked}),
        ))?;
    } else {
        common.say(format!(
            "{TOOL}: {} → {} ({} nodes, {:.1} MB{}{}) in {export_secs:.1}s",
            report.model_type,
            out.display(),
            report.nodes,
            (report.model_bytes + report.external_bytes) as f64 / 1e6,
            if report.int8 { ", int8" } else { "" },
            if report.external_bytes > 0 { ", external data" } else { "" },
        ));
        if let Some(v) = &checked {
            common.say(format!(
                "{TOOL}: verified with onnxruntime {}: logits within {:.1e} (bound {:.1e}), cache {:.1e}, batch {:.1e}, greedy {}/{} tokens equal",
                v.onnxruntime, v.max_abs_diff, v.bound, v.cached_max_abs_diff, v.batch_max_abs_diff, v.greedy_agree, v.greedy_steps
            ));
        }
    }
    Ok(Exit::Success)
}
