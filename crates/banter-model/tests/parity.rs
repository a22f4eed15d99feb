//! Parity with Hugging Face `transformers` and `peft` from the project's venv (`BANTER_PYTHON`, set by
//! `make test`; `BANTER_REQUIRE_PARITY=1` there makes a missing venv a failure, not a skip).

use std::path::Path;
use std::process::Command;

use banter_model::{Gpt2, Gpt2Config, LoraConfig, Pass, io};
use tch::{Device, Tensor};

const IDS: [i64; 10] = [5, 17, 42, 3, 99, 64, 7, 7, 31, 0];

fn python() -> Option<String> {
    match std::env::var("BANTER_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var("BANTER_REQUIRE_PARITY").is_err(), "BANTER_PYTHON is not set but parity is required");
            eprintln!("skipping parity: BANTER_PYTHON is not set (make test sets it)");
            None
        }
    }
}

/// Runs a Python snippet with `dir` and the ids as arguments; returns the logits it prints as JSON.
fn py_logits(py: &str, script: &str, args: &[&Path]) -> Vec<f32> {
    let mut cmd = Command::new(py);
    cmd.arg("-c").arg(format!(
        "import json, sys, torch\ntorch.manual_seed(0)\nIDS = {IDS:?}\n{script}\nprint(json.dumps(out.flatten().tolist()))"
    ));
    cmd.args(args);
    let out = cmd.env("TRANSFORMERS_VERBOSITY", "error").env("HF_HUB_OFFLINE", "1").output().unwrap();
    assert!(out.status.success(), "python failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(out.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap()
}

fn rust_logits(m: &Gpt2) -> Vec<f32> {
    let _g = tch::no_grad_guard();
    let ids = Tensor::from_slice(&IDS).view([1, IDS.len() as i64]);
    let l = m.forward(&ids, None, Pass::eval()).flatten(0, -1);
    Vec::try_from(&l).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn tiny_cfg() -> Gpt2Config {
    let mut c = Gpt2Config::new(100, 32, 32, 2, 4);
    c.attn_pdrop = 0.0;
    c.resid_pdrop = 0.0;
    c.embd_pdrop = 0.0;
    c
}

#[test]
fn a_transformers_model_loads_in_banter_with_equal_logits() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let want = py_logits(
        &py,
        "from transformers import GPT2Config, GPT2LMHeadModel\n\
         m = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=4)).eval()\n\
         m.save_pretrained(sys.argv[1], safe_serialization=True)\n\
         out = m(torch.tensor([IDS])).logits",
        &[dir.path()],
    );
    let m = io::load_model(dir.path(), Device::Cpu).unwrap();
    let d = max_diff(&rust_logits(&m), &want);
    assert!(d < 1e-4, "max |Δlogit| = {d}");
}

#[test]
fn a_hub_style_checkpoint_without_prefix_and_with_mask_buffers_loads() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The Hub's gpt2 has no `transformer.` prefix and carries attn.bias buffers.
    let want = py_logits(
        &py,
        "from transformers import GPT2Config, GPT2LMHeadModel\n\
         from safetensors.torch import save_file\n\
         m = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=4)).eval()\n\
         m.config.save_pretrained(sys.argv[1])\n\
         sd = {k[len('transformer.'):]: v.contiguous() for k, v in m.state_dict().items() if k.startswith('transformer.')}\n\
         for i in range(2): sd[f'h.{i}.attn.bias'] = torch.tril(torch.ones(1, 1, 32, 32, dtype=torch.uint8))\n\
         save_file(sd, sys.argv[1] + '/model.safetensors', metadata={'format': 'pt'})\n\
         out = m(torch.tensor([IDS])).logits",
        &[dir.path()],
    );
    let m = io::load_model(dir.path(), Device::Cpu).unwrap();
    assert!(max_diff(&rust_logits(&m), &want) < 1e-4);
}

#[test]
fn a_banter_model_loads_in_transformers_with_equal_logits() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(11);
    let m = Gpt2::new(tiny_cfg(), Device::Cpu);
    io::save_model(&m, dir.path()).unwrap();
    let got = py_logits(
        &py,
        "from transformers import AutoModelForCausalLM\n\
         m = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()\n\
         out = m(torch.tensor([IDS])).logits",
        &[dir.path()],
    );
    let d = max_diff(&rust_logits(&m), &got);
    assert!(d < 1e-4, "max |Δlogit| = {d}");
}

fn perturb_lora(m: &mut Gpt2) {
    let _g = tch::no_grad_guard();
    for (_, l) in m.conv_layers_mut() {
        if let Some(p) = &mut l.lora {
            let _ = p.b.uniform_(-0.2, 0.2);
        }
    }
}

#[test]
fn a_banter_lora_adapter_loads_in_peft_with_equal_logits() {
    let Some(py) = python() else { return };
    let base = tempfile::tempdir().unwrap();
    let adapter = tempfile::tempdir().unwrap();
    tch::manual_seed(12);
    let mut m = Gpt2::new(tiny_cfg(), Device::Cpu);
    io::save_model(&m, base.path()).unwrap();
    m.attach_lora(&LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, ..Default::default() });
    perturb_lora(&mut m);
    io::save_adapter(&m, adapter.path(), &base.path().display().to_string(), &[]).unwrap();
    let got = py_logits(
        &py,
        "from transformers import AutoModelForCausalLM\n\
         from peft import PeftModel\n\
         base = AutoModelForCausalLM.from_pretrained(sys.argv[1])\n\
         m = PeftModel.from_pretrained(base, sys.argv[2]).eval()\n\
         out = m(torch.tensor([IDS])).logits",
        &[base.path(), adapter.path()],
    );
    let plain = {
        let b = io::load_model(base.path(), Device::Cpu).unwrap();
        rust_logits(&b)
    };
    let ours = rust_logits(&m);
    assert!(max_diff(&ours, &plain) > 1e-3, "the adapter must change the logits for the test to mean anything");
    let d = max_diff(&ours, &got);
    assert!(d < 1e-4, "max |Δlogit| = {d}");
}

#[test]
fn a_peft_adapter_loads_in_banter_with_equal_logits() {
    let Some(py) = python() else { return };
    let base = tempfile::tempdir().unwrap();
    let adapter = tempfile::tempdir().unwrap();
    let want = py_logits(
        &py,
        "from transformers import GPT2Config, GPT2LMHeadModel\n\
         from peft import LoraConfig, get_peft_model\n\
         base = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=4)).eval()\n\
         base.save_pretrained(sys.argv[1], safe_serialization=True)\n\
         m = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=['c_attn', 'c_proj'], fan_in_fan_out=True, task_type='CAUSAL_LM'))\n\
         for n, p in m.named_parameters():\n\
         \x20   if 'lora_B' in n: torch.nn.init.uniform_(p, -0.2, 0.2)\n\
         m.save_pretrained(sys.argv[2])\n\
         m.eval()\n\
         out = m(torch.tensor([IDS])).logits",
        &[base.path(), adapter.path()],
    );
    let mut m = io::load_model(base.path(), Device::Cpu).unwrap();
    io::load_adapter(&mut m, adapter.path()).unwrap();
    let d = max_diff(&rust_logits(&m), &want);
    assert!(d < 1e-4, "max |Δlogit| = {d}");
    // Merged, the same.
    m.merge_lora();
    assert!(max_diff(&rust_logits(&m), &want) < 1e-4);
}
