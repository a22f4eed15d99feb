//! kill -9 at different points of a run, then `--resume`: the resumed run continues exactly (the same
//! losses as a run never killed), metrics list each step once, and no temp file is left.

use crate::{losses, prepare};

fn run(args: &[&str], tok: &std::path::Path, blocks: &std::path::Path, out: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-train"));
    c.args([
        "--config",
        "tiny",
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--precision",
        "fp32",
        "-q",
        "--dropout",
        "0.1",
    ])
    .args(args)
    .arg("--tokenizer")
    .arg(tok)
    .arg("-o")
    .arg(out)
    .arg(blocks);
    c
}

#[test]
fn kill_9_then_resume_continues_exactly_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let args = ["--max-steps", "40", "--save-every", "4", "--save-total-limit", "2"];
    let whole = dir.path().join("whole");
    assert!(run(&args, &tok, &blocks, &whole).status().unwrap().success());
    let want = losses(&whole);
    // Kill at several moments: right after the first checkpoint appears, and a little later.
    for (round, extra_ms) in [0u64, 37, 113].into_iter().enumerate() {
        let out = dir.path().join(format!("killed-{round}"));
        let mut child = run(&args, &tok, &blocks, &out).spawn().unwrap();
        for _ in 0..400 {
            if out.join("checkpoint-4").exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(extra_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let resumed = run(&[&args[..], &["--resume", ""]].concat(), &tok, &blocks, &out).status().unwrap();
        assert!(resumed.success(), "round {round}: resume failed");
        let got = losses(&out);
        let steps: Vec<i64> = got.iter().map(|x| x.0).collect();
        assert_eq!(steps, (1..=40).collect::<Vec<_>>(), "round {round}: each step once");
        for (g, w) in got.iter().zip(&want) {
            assert!((g.1 - w.1).abs() < 1e-6, "round {round}, step {}: {} vs {}", g.0, g.1, w.1);
        }
        let temps: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(temps.is_empty(), "round {round}: temps left {temps:?}");
    }
}
