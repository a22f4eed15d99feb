//! The tool's manners: help with examples, usage errors, and an output the user had left as it was when
//! an export fails.

use crate::{bin, families, trained};

#[test]
fn help_has_examples_and_bad_arguments_are_usage_errors() {
    let o = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("Examples:") && help.contains("banter-export gguf"), "{help}");
    let o = bin().args(["onnx", "m", "-o", "-"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = bin().args(["hub", "/nonexistent-dir", "me/x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_failed_export_leaves_the_previous_output_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = families().into_iter().find(|(n, _)| *n == "opt").unwrap().1;
    let model = trained(dir.path(), "opt", &cfg, &[]);
    // GGUF of OPT fails: the file the user had is untouched.
    let out = dir.path().join("keep.gguf");
    std::fs::write(&out, b"precious").unwrap();
    let o = bin().arg("gguf").arg(&model).arg("-o").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    // ONNX with a check that cannot run (no Python): the directory the user had is untouched, exit 4.
    let od = dir.path().join("keep-onnx");
    std::fs::create_dir_all(&od).unwrap();
    std::fs::write(od.join("mine.txt"), b"mine").unwrap();
    let o = bin()
        .env("BANTER_PYTHON", "/nonexistent/python")
        .arg("onnx")
        .arg(&model)
        .arg("-o")
        .arg(&od)
        .arg("--verify")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot verify"));
    assert_eq!(std::fs::read(od.join("mine.txt")).unwrap(), b"mine");
    assert!(!od.join("model.onnx").exists());
    // Without --verify it replaces the directory whole, and nothing partial is left beside it.
    let o = bin().arg("onnx").arg(&model).arg("-o").arg(&od).output().unwrap();
    assert!(o.status.success());
    assert!(od.join("model.onnx").exists() && !od.join("mine.txt").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".keep-onnx"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { v.push((p.clone(), std::fs::read(&p).unwrap())) }
        }
    }
    v.sort();
    v
}

#[test]
fn an_export_onto_its_own_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = families().into_iter().find(|(n, _)| *n == "llama").unwrap().1;
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let model = trained(&models, "llama", &cfg, &[]);
    let before = snapshot(dir.path());
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&model, &link).unwrap();
    for (cmd, out) in [
        ("onnx", model.clone()),                        // is the input
        ("onnx", models.clone()),                       // holds the input
        ("onnx", model.join("onnx")),                   // lies inside it
        ("gguf", model.join("model.safetensors")),      // a file of it
        ("gguf", model.join("model.gguf")),             // a new file inside it
        ("onnx", link.clone()),                         // through a symlink
        ("onnx", model.join("..").join("model-llama")), // another spelling
    ] {
        let o = bin().arg(cmd).arg(&model).arg("-o").arg(&out).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd} -o {}: {err}", out.display());
        assert!(err.contains("an input") && err.lines().count() <= 3, "{err}");
    }
    // Through the symlink as the model, the real folder as -o.
    let o = bin().arg("onnx").arg(&link).arg("-o").arg(&model).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_file(&link).unwrap();
    assert_eq!(snapshot(dir.path()), before, "the input changed");
}

#[test]
fn a_killed_directory_swap_is_restored_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = families().into_iter().find(|(n, _)| *n == "gpt2").unwrap().1;
    let model = trained(dir.path(), "gpt2", &cfg, &[]);
    let out = dir.path().join("model-onnx");
    bin().arg("onnx").arg(&model).arg("-o").arg(&out).assert().success();
    let first = snapshot(&out);
    // As if an export had been killed between moving the old output aside and putting the new one in
    // place (a process that is gone: pid above pid_max), and another had died while staging.
    let old = dir.path().join(".model-onnx.old-4000000001");
    std::fs::rename(&out, &old).unwrap();
    let partial = dir.path().join(".model-onnx.partial-4000000002");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("model.onnx"), b"half").unwrap();
    bin().arg("onnx").arg(&model).arg("-o").arg(&out).assert().success();
    assert_eq!(snapshot(&out).len(), first.len());
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
