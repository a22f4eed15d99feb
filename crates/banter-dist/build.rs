//! Compiles `csrc/c10d.cpp` against the headers of the libtorch torch-sys links (the venv's PyPI torch), with
//! the same C++ standard and ABI flag as torch-sys, and NCCL's part only where that libtorch has CUDA.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=csrc/c10d.cpp");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo::rustc-check-cfg=cfg(banter_nccl)");
    let lib = PathBuf::from(
        env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch's lib dir is unknown: build through `make build` (LIBTORCH_USE_PYTORCH=1 and the venv)"),
    );
    let root = lib.parent().expect("torch's lib dir has a parent").to_path_buf();
    let include = root.join("include");
    let nccl = lib.join("libtorch_cuda.so").exists();
    // This crate's own tests run without LD_LIBRARY_PATH (the tools get the same from build_rpath.rs).
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={}", cxx11_abi(&root)))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("csrc/c10d.cpp");
    if nccl {
        build.define("BANTER_NCCL", None);
        println!("cargo:rustc-cfg=banter_nccl");
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
    build.compile("banter_c10d");
    check_no_vtables(&PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("libbanter_c10d.a"));
}

/// torch's `_GLIBCXX_USE_CXX11_ABI`, as torch-sys reads it: from the python that owns `root` when there is
/// one, else 1 (every PyPI wheel since torch 2.7).
fn cxx11_abi(root: &Path) -> &'static str {
    let python = env::var("BANTER_PYTHON").ok().or_else(|| env::var("PYTHON_SYS_EXECUTABLE").ok());
    let probe = python.and_then(|py| {
        Command::new(py).args(["-c", "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"]).output().ok()
    });
    match probe.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()) {
        Some(v) if v == "0" => "0",
        _ => {
            let _ = root;
            "1"
        }
    }
}

/// The shim declares libtorch's ProcessGroupGloo/NCCL without their real layout; it must never define a
/// vtable, constructor or destructor of its own for them (those would shadow libtorch's). Fails the build if
/// `nm` lists one among the archive's defined symbols (skipped where `nm` is missing).
fn check_no_vtables(archive: &Path) {
    let Ok(out) = Command::new("nm").args(["--defined-only", "-C"]).arg(archive).output() else {
        println!("cargo:warning=nm not found: the shim's symbol check was skipped");
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().skip(2).collect::<Vec<_>>().join(" ");
        let own = ["c10d::ProcessGroupGloo", "c10d::ProcessGroupNCCL"]
            .iter()
            .any(|c| name.starts_with(&format!("vtable for {c}")) || name.starts_with(&format!("{c}::")));
        assert!(!own, "csrc/c10d.cpp defines `{name}`: it would shadow libtorch's own");
    }
}
