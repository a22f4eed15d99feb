//! Which numeric precision to compute in, chosen by what the hardware does natively and, on CPU, by a
//! measurement — never by assumption.
//!
//! - **CPU:** bf16 is native only with `avx512_bf16` or `amx_bf16` (x86) or `bf16` (Arm); elsewhere libtorch
//!   emulates it and it is an order of magnitude slower, so `auto` stays in fp32 without asking further. Where
//!   it is native, the caller times a short probe on the real shape and keeps bf16 only when it is faster and
//!   the loss agrees ([`decide_cpu`]).
//! - **CUDA:** bf16 from compute capability 8.0 (Ampere); below that fp16 autocast with dynamic loss scaling.
//!
//! Both banter-train (`--precision`) and banter-chat (`--precision`, the weights' dtype) use this module.

use std::fmt;

use tch::{Device, Kind};

/// What the user asked for (`--precision` of banter-train and banter-chat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum PrecisionArg {
    /// By the hardware: CUDA ≥ 8.0 bf16, older CUDA fp16; CPU bf16 only with avx512_bf16/amx_bf16 and when a
    /// timed probe shows it faster (training: on the first batch, with the loss within 1%) — else fp32.
    Auto,
    /// fp32 everywhere.
    Fp32,
    /// bf16 matmuls (training: with fp32 master weights).
    Bf16,
    /// fp16 (CUDA only; training: autocast with dynamic loss scaling).
    Fp16,
}

/// A resolved precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// fp32.
    Fp32,
    /// bf16 compute, fp32 master weights.
    Bf16,
    /// fp16 autocast (CUDA), fp32 master weights, dynamic loss scaling.
    Fp16,
}

impl Precision {
    /// `fp32`, `bf16`, `fp16`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }

    /// The kind matmuls are cast to by hand (fp16 goes through autocast instead, so it computes "fp32"
    /// as far as the model code is concerned).
    pub fn compute_kind(self) -> Kind {
        match self {
            Precision::Bf16 => Kind::BFloat16,
            Precision::Fp32 | Precision::Fp16 => Kind::Float,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A choice and the reason for it, printed by the tools.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The precision.
    pub precision: Precision,
    /// Why, in a few words (`"no avx512_bf16/amx_bf16 in the CPU flags: bf16 would be emulated"`).
    pub reason: String,
    /// True when the caller still has to time a probe before bf16 is confirmed (CPU with native bf16).
    pub needs_probe: bool,
}

/// Errors of an explicit request the device cannot honour.
#[derive(Debug, thiserror::Error)]
pub enum PrecisionError {
    /// `--precision fp16` on CPU.
    #[error("--precision fp16 needs a CUDA device (fp16 autocast with loss scaling); on CPU use fp32 or bf16")]
    Fp16OnCpu,
    /// `--quantize int8` with a request it cannot honour.
    #[error("{0}")]
    Int8(&'static str),
}

/// The CPU's feature flags (`flags` on x86, `Features` on Arm) from `/proc/cpuinfo`. `BANTER_CPU_FLAGS`
/// replaces them (for tests, and to force a decision on a machine whose flags lie).
pub fn cpu_flags() -> String {
    if let Ok(f) = std::env::var("BANTER_CPU_FLAGS") {
        return f;
    }
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "flags" | "Features").then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// The CPU's model name.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "model name" | "Model" | "CPU part").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The flags that mean the CPU computes bf16 natively, found in `flags`.
pub fn native_bf16_flags(flags: &str) -> Vec<&str> {
    flags.split_whitespace().filter(|f| matches!(*f, "avx512_bf16" | "amx_bf16" | "bf16")).collect()
}

/// CUDA compute capability of device `index`, from `nvidia-smi` (None when it cannot be asked).
/// `BANTER_CUDA_CAPABILITY=7.5` replaces it.
pub fn cuda_capability(index: usize) -> Option<(u32, u32)> {
    let text = match std::env::var("BANTER_CUDA_CAPABILITY") {
        Ok(v) => v,
        Err(_) => {
            let out = std::process::Command::new("nvidia-smi")
                .args(["--query-gpu=compute_cap", "--format=csv,noheader", &format!("--id={index}")])
                .output()
                .ok()?;
            String::from_utf8(out.stdout).ok()?
        }
    };
    let (a, b) = text.trim().split_once('.')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// The hardware's answer for `arg` on `device`, given the CPU flags (`cpu_flags()`) and CUDA capability.
/// Explicit requests are honoured (with a warning in the reason when they will be slow).
pub fn hardware(
    arg: PrecisionArg,
    device: Device,
    flags: &str,
    capability: Option<(u32, u32)>,
) -> Result<Decision, PrecisionError> {
    let d = |precision, reason: String| Decision { precision, reason, needs_probe: false };
    let cuda = matches!(device, Device::Cuda(_));
    let native = native_bf16_flags(flags);
    Ok(match (arg, cuda) {
        (PrecisionArg::Fp32, _) => d(Precision::Fp32, "asked for (--precision fp32)".into()),
        (PrecisionArg::Fp16, false) => return Err(PrecisionError::Fp16OnCpu),
        (PrecisionArg::Fp16, true) => d(Precision::Fp16, "asked for (--precision fp16)".into()),
        (PrecisionArg::Bf16, false) if native.is_empty() => d(
            Precision::Bf16,
            "asked for (--precision bf16); warning: this CPU has no avx512_bf16/amx_bf16, bf16 is emulated and slow"
                .into(),
        ),
        (PrecisionArg::Bf16, _) => d(Precision::Bf16, "asked for (--precision bf16)".into()),
        (PrecisionArg::Auto, false) if native.is_empty() => {
            d(Precision::Fp32, "the CPU has no avx512_bf16/amx_bf16: bf16 would be emulated and slower".into())
        }
        (PrecisionArg::Auto, false) => Decision {
            precision: Precision::Bf16,
            reason: format!("the CPU computes bf16 natively ({})", native.join(", ")),
            needs_probe: true,
        },
        (PrecisionArg::Auto, true) => match capability {
            Some((major, minor)) if major >= 8 => {
                d(Precision::Bf16, format!("CUDA capability {major}.{minor} computes bf16 natively"))
            }
            Some((major, minor)) => d(
                Precision::Fp16,
                format!("CUDA capability {major}.{minor} < 8.0 has no bf16: fp16 autocast with loss scaling"),
            ),
            None => {
                d(Precision::Fp16, "CUDA capability unknown (no nvidia-smi): fp16 autocast, safe everywhere".into())
            }
        },
    })
}

/// [`hardware`] for this machine.
pub fn resolve(arg: PrecisionArg, device: Device) -> Result<Decision, PrecisionError> {
    let cap = match device {
        Device::Cuda(i) if arg == PrecisionArg::Auto => cuda_capability(i),
        _ => None,
    };
    hardware(arg, device, &cpu_flags(), cap)
}

/// The end of a CPU probe: bf16 is kept only when it was faster (by ≥ 10%) and the loss agrees (within 1%).
/// A probe whose fp32 time is under `floor_secs` measured call overhead, not arithmetic: a model that small
/// stays in fp32, so the choice (and the numbers) do not flip with the machine's load from run to run.
pub fn decide_cpu(
    native: &Decision,
    fp32_secs: f64,
    bf16_secs: f64,
    fp32_loss: f64,
    bf16_loss: f64,
    floor_secs: f64,
) -> Decision {
    let rel = ((fp32_loss - bf16_loss) / fp32_loss).abs();
    let speed = fp32_secs / bf16_secs.max(1e-12);
    let facts = format!(
        "{}; probe: bf16 {:.0} ms vs fp32 {:.0} ms per step ({speed:.2}×), loss {:.3}% apart",
        native.reason,
        bf16_secs * 1e3,
        fp32_secs * 1e3,
        rel * 100.0
    );
    let (precision, verdict) = if !rel.is_finite() || rel >= 0.01 {
        (Precision::Fp32, "the losses disagree")
    } else if fp32_secs < floor_secs {
        (Precision::Fp32, "the model is too small for bf16 to pay")
    } else if speed < 1.1 {
        (Precision::Fp32, "bf16 is not faster here")
    } else {
        (Precision::Bf16, "bf16 is faster and agrees")
    };
    Decision { precision, reason: format!("{facts}: {verdict}"), needs_probe: false }
}

/// Dynamic loss scaling for fp16 (as `torch.amp.GradScaler`): the loss is multiplied by `scale` before the
/// backward pass; a step whose gradients overflow is skipped and the scale halved; after `interval` good
/// steps in a row the scale doubles.
#[derive(Debug, Clone)]
pub struct LossScaler {
    /// The current scale.
    pub scale: f64,
    good: u32,
    interval: u32,
    /// Steps skipped for overflow.
    pub skipped: u64,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler { scale: 65536.0, good: 0, interval: 2000, skipped: 0 }
    }
}

impl LossScaler {
    /// Records a step whose (scaled) gradient norm was `norm`; returns true when the step may be taken.
    pub fn update(&mut self, norm: f64) -> bool {
        if !norm.is_finite() {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good = 0;
            self.skipped += 1;
            return false;
        }
        self.good += 1;
        if self.good >= self.interval {
            self.scale *= 2.0;
            self.good = 0;
        }
        true
    }
}

/// Seconds for a `[1, k] × [k, n]` product in `kind`, best of 5 after a warm-up (the decode step's shape).
fn time_matmul(k: i64, n: i64, kind: Kind) -> f64 {
    let _g = tch::no_grad_guard();
    let x = tch::Tensor::randn([1, k], (Kind::Float, Device::Cpu)).to_kind(kind);
    let w = tch::Tensor::randn([k, n], (Kind::Float, Device::Cpu)).to_kind(kind);
    let mut best = f64::INFINITY;
    for rep in 0..6 {
        let t = std::time::Instant::now();
        let _ = x.matmul(&w);
        if rep > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
    }
    best
}

/// The compute kind for inference (the weights' dtype) and the reason, by the hardware rules above; on a CPU
/// with native bf16, a timed probe of the model's largest decode product `head` = (width, vocabulary)
/// decides. `int8` (int8 weights, fp32 activations) runs on CPU in fp32 only.
pub fn choose_inference(
    arg: PrecisionArg,
    int8: bool,
    device: Device,
    head: (i64, i64),
) -> Result<(Kind, String), PrecisionError> {
    if int8 {
        if device != Device::Cpu {
            return Err(PrecisionError::Int8("--quantize runs on CPU; on a GPU use --precision bf16 or fp16"));
        }
        if matches!(arg, PrecisionArg::Bf16 | PrecisionArg::Fp16) {
            return Err(PrecisionError::Int8(
                "--quantize computes in fp32 between its matrices: leave --precision at auto or fp32",
            ));
        }
        return Ok((Kind::Float, "quantized weights (--quantize), fp32 activations".into()));
    }
    let d = resolve(arg, device)?;
    let d = if d.needs_probe {
        let (k, n) = head;
        let (t32, t16) = (time_matmul(k, n, Kind::Float), time_matmul(k, n, Kind::BFloat16));
        // A matmul probe has no loss to compare: pass equal losses so only the speed decides. A head
        // product under 0.2 ms measures call overhead, not bandwidth: such a model stays in fp32.
        decide_cpu(&d, t32, t16, 1.0, 1.0, 200e-6)
    } else {
        d
    };
    // Inference holds the weights in the chosen dtype: fp16 is real fp16 here, not autocast.
    let kind = match d.precision {
        Precision::Fp32 => Kind::Float,
        Precision::Bf16 => Kind::BFloat16,
        Precision::Fp16 => Kind::Half,
    };
    Ok((kind, format!("{}: {}", d.precision, d.reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVX2: &str =
        "fpu vme de pse tsc msr pae mce cx8 apic sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2";
    const SPR: &str = "sse sse2 avx avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8 avx512_vnni";

    #[test]
    fn auto_never_picks_bf16_without_native_flags() {
        for flags in [AVX2, "", "avx512f avx512bw avx512vl"] {
            let d = hardware(PrecisionArg::Auto, Device::Cpu, flags, None).unwrap();
            assert_eq!(d.precision, Precision::Fp32, "{flags}");
            assert!(!d.needs_probe);
            assert!(d.reason.contains("emulated"), "{}", d.reason);
        }
    }

    #[test]
    fn native_bf16_cpus_are_probed_and_the_probe_decides() {
        let d = hardware(PrecisionArg::Auto, Device::Cpu, SPR, None).unwrap();
        assert_eq!((d.precision, d.needs_probe), (Precision::Bf16, true));
        assert!(d.reason.contains("avx512_bf16, amx_bf16"), "{}", d.reason);
        assert_eq!(decide_cpu(&d, 1.0, 0.5, 2.0, 2.001, 0.01).precision, Precision::Bf16);
        let slow = decide_cpu(&d, 1.0, 1.2, 2.0, 2.001, 0.01);
        assert_eq!(slow.precision, Precision::Fp32);
        assert!(slow.reason.contains("not faster"), "{}", slow.reason);
        assert_eq!(decide_cpu(&d, 1.0, 0.5, 2.0, 2.2, 0.01).precision, Precision::Fp32);
        assert_eq!(decide_cpu(&d, 1.0, 0.5, 2.0, f64::NAN, 0.01).precision, Precision::Fp32);
        // Faster by half, but in microseconds: noise, so fp32.
        let tiny = decide_cpu(&d, 0.002, 0.001, 2.0, 2.001, 0.01);
        assert_eq!(tiny.precision, Precision::Fp32);
        assert!(tiny.reason.contains("too small"), "{}", tiny.reason);
        // Arm's flag.
        assert!(hardware(PrecisionArg::Auto, Device::Cpu, "fp asimd bf16 i8mm", None).unwrap().needs_probe);
    }

    #[test]
    fn cuda_uses_bf16_from_ampere_and_fp16_before() {
        let cuda = Device::Cuda(0);
        assert_eq!(hardware(PrecisionArg::Auto, cuda, AVX2, Some((8, 0))).unwrap().precision, Precision::Bf16);
        assert_eq!(hardware(PrecisionArg::Auto, cuda, AVX2, Some((9, 0))).unwrap().precision, Precision::Bf16);
        let turing = hardware(PrecisionArg::Auto, cuda, AVX2, Some((7, 5))).unwrap();
        assert_eq!(turing.precision, Precision::Fp16);
        assert!(turing.reason.contains("7.5"), "{}", turing.reason);
        assert_eq!(hardware(PrecisionArg::Auto, cuda, AVX2, None).unwrap().precision, Precision::Fp16);
    }

    #[test]
    fn explicit_requests_are_honoured_or_refused() {
        assert_eq!(hardware(PrecisionArg::Fp32, Device::Cpu, SPR, None).unwrap().precision, Precision::Fp32);
        let b = hardware(PrecisionArg::Bf16, Device::Cpu, AVX2, None).unwrap();
        assert_eq!(b.precision, Precision::Bf16);
        assert!(b.reason.contains("warning"));
        assert!(hardware(PrecisionArg::Fp16, Device::Cpu, SPR, None).is_err());
        assert_eq!(hardware(PrecisionArg::Fp16, Device::Cuda(0), "", None).unwrap().precision, Precision::Fp16);
    }

    #[test]
    fn loss_scaler_backs_off_on_overflow_and_grows_after_good_steps() {
        let mut s = LossScaler { interval: 3, ..Default::default() };
        assert!(!s.update(f64::INFINITY));
        assert_eq!(s.scale, 32768.0);
        assert!(!s.update(f64::NAN));
        assert_eq!((s.scale, s.skipped), (16384.0, 2));
        for _ in 0..3 {
            assert!(s.update(1.0));
        }
        assert_eq!(s.scale, 32768.0);
    }

    #[test]
    fn this_machines_flags_are_read() {
        // Whatever this CPU is, the decision is consistent with its flags.
        let flags = cpu_flags();
        let d = resolve(PrecisionArg::Auto, Device::Cpu).unwrap();
        assert_eq!(d.needs_probe, !native_bf16_flags(&flags).is_empty(), "{flags}");
        assert!(!cpu_model().is_empty());
    }
}
