//! `banter-export gguf`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::json;

use banter_convert::gguf::{self, GgmlType, GgufSettings};
use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};
use banter_core::jsonl::Output;

use crate::{ModelIn, TOOL, out_path};

/// `--type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Type {
    /// 32-bit floats.
    F32,
    /// Half floats.
    F16,
    /// 8-bit blocks (llama.cpp's Q8_0): about a quarter of f32.
    #[value(name = "q8_0")]
    Q8_0,
    /// bfloat16 (llama.cpp's BF16): half of f32, with f32's range.
    Bf16,
    /// 4-bit blocks (llama.cpp's Q4_0): about a seventh of f32; the token embeddings and the output
    /// matrix stay Q8_0, as llama.cpp keeps its output matrix at more bits.
    #[value(name = "q4_0")]
    Q4_0,
}

/// `banter-export gguf MODEL -o FILE`.
#[derive(Debug, Args)]
pub struct GgufArgs {
    #[command(flatten)]
    pub model: ModelIn,
    /// The GGUF file (written atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The matrices' type (vectors stay f32).
    #[arg(long = "type", value_enum, default_value_t = Type::F16)]
    pub kind: Type,
    /// Run the file in llama.cpp (llama-cpp-python) against banter: f32 files must give equal greedy tokens
    /// (f16/q8_0: reported); a mismatch exits 1 and leaves the previous file in place.
    #[arg(long)]
    pub verify: bool,
    /// --verify's greedy tokens.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub verify_steps: usize,
    /// general.name (default: the model directory's name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

pub fn run(a: &GgufArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let out = out_path(&a.output)?;
    let t0 = Instant::now();
    let src = a.model.load(common, out)?;
    let kind = match a.kind {
        Type::F32 => GgmlType::F32,
        Type::F16 => GgmlType::F16,
        Type::Q8_0 => GgmlType::Q8_0,
        Type::Bf16 => GgmlType::Bf16,
        Type::Q4_0 => GgmlType::Q4_0,
    };
    let mut file = Output::file(out)?;
    let report = gguf::export(&src, &GgufSettings { kind, name: a.name.clone() }, &mut file)?;
    file.flush()?;
    let secs = t0.elapsed().as_secs_f64();
    for w in &report.warnings {
        common.say(format!("{TOOL}: warning: {w}"));
    }
    let checked = if a.verify {
        // llama.cpp reads the file by path: the written (not yet committed) file, before it replaces anything.
        let pending = file.pending_path().unwrap_or(out).to_path_buf();
        Some(gguf::verify::verify(&src, &pending, a.verify_steps, kind == GgmlType::F32, None)?)
    } else {
        None
    };
    banter_core::interrupt::check()?;
    file.commit()?;
    if common.json {
        cli::print_report(&cli::report(
            TOOL,
            Exit::Success,
            json!({"command": "gguf", "output": out, "export": report, "export_secs": secs, "verify": checked}),
        ))?;
    } else {
        common.say(format!(
            "{TOOL}: {} → {} ({} tensors {:?}, {:.1} MB{}) in {secs:.1}s",
            report.architecture,
            out.display(),
            report.tensors,
            report.by_type,
            report.bytes as f64 / 1e6,
            if report.chat_template { ", chat template" } else { "" },
        ));
        if let Some(v) = &checked {
            common.say(format!(
                "{TOOL}: verified with llama.cpp {}: greedy {}/{} tokens equal (next-token logits within {:.1e})",
                v.llama_cpp, v.greedy_agree, v.greedy_steps, v.first_logits_max_abs_diff
            ));
        }
    }
    Ok(Exit::Success)
}
