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
