//! Facts about the libtorch runtime: version, CUDA, device choice.

use std::fmt;

/// The libtorch version banter was built against (from the venv's torch).
pub const LIBTORCH_VERSION: &str = env!("BANTER_LIBTORCH_VERSION");

/// Where tensors live (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DeviceArg {
    /// CUDA when available, else CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA GPU.
    Cuda,
}

/// Errors about the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `--device cuda` on a machine without a usable GPU.
    #[error("--device cuda: no CUDA device is available (libtorch {LIBTORCH_VERSION}); use --device cpu or auto")]
    NoCuda,
}

impl DeviceArg {
    /// Resolves to a tch device.
    pub fn resolve(self) -> Result<tch::Device, RuntimeError> {
        match self {
            DeviceArg::Cpu => Ok(tch::Device::Cpu),
            DeviceArg::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            DeviceArg::Cuda => Err(RuntimeError::NoCuda),
            DeviceArg::Auto => Ok(tch::Device::cuda_if_available()),
        }
    }
}

/// Keeps memory that libtorch frees for reuse instead of handing it back to the kernel at once.
///
/// glibc's malloc serves large blocks (above a dynamic threshold of ≤ 32 MB) with fresh `mmap`s and trims
/// the top of the heap as soon as 2 × that much is free, so the activations and gradients a training step
/// frees are returned to the kernel and faulted in (and zeroed, page by page) again on the next step:
/// on a 2-core EPYC `clear_page` was 13% of a GPT-2 124M training step. Raising the mmap threshold to its
/// maximum and turning trimming off keeps them in the heap: 98 → 125 tokens/s there. Peak RSS is unchanged
/// (the same blocks are live at the peak either way). No effect outside glibc.
///
/// Blocks above that maximum (32 MB: a bf16 copy of GPT-2's 77 MB embedding matrix, its gradient, a chunk of
/// logits) were still `mmap`ed and unmapped on every step; they now come from the heap too (`M_MMAP_MAX` 0),
/// so after the first step nothing is faulted in again. GPT-2 124M bf16 training on a 2-core AVX-512 EPYC:
/// 505 → 583 tokens/s, and 275–370 → 543–576 while the host's page faults were slow; fp32 unchanged; peak
/// RSS +1–4%. `BANTER_MALLOC_MMAP=1` keeps glibc's `mmap` for them (memory handed back at once).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes malloc's tuning parameters; called before the threads that allocate
    // start working, and glibc takes its own lock anyway.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        if std::env::var_os("BANTER_MALLOC_MMAP").is_none_or(|v| v != "1") {
            libc::mallopt(libc::M_MMAP_MAX, 0);
        }
    }
}

/// A summary of the runtime, for `--version`.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    /// libtorch version.
    pub libtorch: &'static str,
    /// Number of CUDA devices (0 when none).
    pub cuda_devices: usize,
    /// Whether cuDNN is available.
    pub cudnn: bool,
    /// Threads libtorch uses for intra-op parallelism.
    pub threads: i32,
}

impl RuntimeInfo {
    /// Queries libtorch.
    pub fn query() -> Self {
        let cuda_devices = if tch::Cuda::is_available() { tch::Cuda::device_count().max(0) as usize } else { 0 };
        RuntimeInfo {
            libtorch: LIBTORCH_VERSION,
            cuda_devices,
            cudnn: tch::Cuda::cudnn_is_available(),
            threads: tch::get_num_threads(),
        }
    }
}

impl fmt::Display for RuntimeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "libtorch {}", self.libtorch)?;
        if self.cuda_devices > 0 {
            write!(
                f,
                ", CUDA available ({} device{}",
                self.cuda_devices,
                if self.cuda_devices == 1 { "" } else { "s" }
            )?;
            if self.cudnn {
                write!(f, ", cuDNN")?;
            }
            write!(f, ")")
        } else {
            write!(f, ", CUDA not available (CPU only)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_is_linked_and_usable() {
        assert!(LIBTORCH_VERSION.starts_with("2."), "{LIBTORCH_VERSION}");
        let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        assert_eq!(t.sum(tch::Kind::Float).double_value(&[]), 6.0);
        let info = RuntimeInfo::query();
        assert!(info.to_string().starts_with("libtorch 2."));
        assert_eq!(DeviceArg::Cpu.resolve().unwrap(), tch::Device::Cpu);
        if !tch::Cuda::is_available() {
            assert!(DeviceArg::Cuda.resolve().is_err());
            assert_eq!(DeviceArg::Auto.resolve().unwrap(), tch::Device::Cpu);
        }
    }
}
