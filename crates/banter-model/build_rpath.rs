//! Build script shared by every crate that links libtorch (banter-model, banter-train, banter-chat).
//!
//! torch-sys finds libtorch (with `LIBTORCH_USE_PYTORCH=1`, in the project's venv) and links it, but its
//! link arguments do not reach the binaries of downstream crates, so those would need `LD_LIBRARY_PATH`.
//! This script gets torch's lib directory — from torch-sys (`DEP_TCH_LIBTORCH_LIB`) in banter-model, from
//! banter-model (`DEP_BANTER_TORCH_LIBTORCH_LIB`) in the tools — and emits:
//! - an rpath to it, so binaries and tests run from anywhere with no environment set;
//! - `--no-as-needed` for `libtorch_cuda` when present, so CUDA is registered even though no symbol of
//!   it is referenced directly (otherwise `tch::Cuda::is_available()` is false on a GPU machine);
//! - the libtorch version as `BANTER_LIBTORCH_VERSION` (from torch's `version.py`).

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build_rpath.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=DEP_BANTER_TORCH_LIBTORCH_LIB");
    let lib = env::var("DEP_TCH_LIBTORCH_LIB")
        .or_else(|_| env::var("DEP_BANTER_TORCH_LIBTORCH_LIB"))
        .expect("torch's lib dir is unknown: build through `make build` (LIBTORCH_USE_PYTORCH=1 and the venv)");
    let lib_dir = Path::new(&lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    let version = std::fs::read_to_string(lib_dir.join("../version.py"))
        .ok()
        .and_then(|v| {
            v.lines()
                .find_map(|l| l.strip_prefix("__version__ = ").map(|s| s.trim().trim_matches(['\'', '"']).to_string()))
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BANTER_LIBTORCH_VERSION={version}");
    if env::var_os("CARGO_MANIFEST_LINKS").is_some() {
        println!("cargo:libtorch_lib={lib}");
    }
}
