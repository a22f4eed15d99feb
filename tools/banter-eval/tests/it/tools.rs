//! split, qa and bad input: one-line errors naming the file, line and field, documented exit codes.

use crate::{bin, fixture, run_ok};

#[test]
fn split_writes_the_file_and_refuses_bad_shares() {
    let f = fixture();
    let out = f.root.join("s2.json");
    let o = run_ok(bin().arg("split").arg(&f.messages).args(["--holdout", "0.2", "--json", "-o"]).arg(&out));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["split"]["held_out"], 144);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&f.split).unwrap(), "the same chat splits the same way");
    let o = bin()
        .arg("split")
        .arg(&f.messages)
        .args(["--holdout", "1.5", "-o"])
        .arg(f.root.join("s3.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!f.root.join("s3.json").exists());
    // A bad messages line: exit 3, naming file, line and field.
    let bad = f.root.join("bad-messages.jsonl");
    std::fs::write(
        &bad,
        "{\"ts\": \"2026-01-01T00:00:00\", \"author\": \"A\", \"text\": \"hi\"}\n{\"ts\": 5, \"text\": \"x\"}\n",
    )
    .unwrap();
    let o = bin().arg("split").arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad-messages.jsonl:2") && err.contains("ts"), "{err}");
}

#[test]
fn persona_refuses_unknown_speakers_and_missing_models() {
    let f = fixture();
    let o = bin()
        .arg("persona")
        .arg(&f.base)
        .arg("--messages")
        .arg(&f.messages)
        .args(["--persona", "Nobody"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no messages by \"Nobody\"") && err.contains("Sara"), "{err}");
    let o = bin()
        .arg("persona")
        .arg(f.root.join("missing"))
        .arg("--messages")
        .arg(&f.messages)
        .args(["--persona", "Sara"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing: model folder not found"));
}

#[test]
fn qa_scores_exact_match_and_f1_and_gates() {
    let f = fixture();
    let qa = f.root.join("qa.jsonl");
    std::fs::write(
        &qa,
        concat!(
            "{\"question\": \"where are you?\", \"answer\": \"at home\"}\n",
            "{\"question\": \"coming tonight?\", \"answers\": [\"yes\", \"maybe\"]}\n",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"call me?\"}, {\"role\": \"assistant\", \"content\": \"later\"}]}\n"
        ),
    )
    .unwrap();
    let o =
        run_ok(bin().arg("qa").arg(&f.base).arg(&qa).arg("--adapter").arg(&f.sara).args(["--json", "--threads", "1"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["questions"], 3);
    let answers = v["answers"].as_array().unwrap();
    for a in answers {
        let (em, f1) = (a["exact_match"].as_f64().unwrap(), a["f1"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&f1) && (em == 0.0 || em == 1.0) && f1 >= em, "{a}");
    }
    let mean = answers.iter().map(|a| a["f1"].as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!((v["f1"].as_f64().unwrap() - mean).abs() < 1e-12);
    let o = bin().arg("qa").arg(&f.base).arg(&qa).args(["--min-f1", "1.01", "-q"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    std::fs::write(&qa, "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q\"}\n").unwrap();
    let o = bin().arg("qa").arg(&f.base).arg(&qa).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("qa.jsonl:2") && err.contains("field \"answer\""), "{err}");
}

/// No output may replace what the run reads: the messages, a model's files, the split.
#[test]
fn outputs_never_clobber_inputs() {
    let f = fixture();
    let weights = f.base.join("model.safetensors");
    let before = std::fs::read(&weights).unwrap();
    let messages = std::fs::read(&f.messages).unwrap();
    for (target, args) in [
        (weights.clone(), vec!["persona"]),
        (f.messages.clone(), vec!["persona"]),
        (f.base.join("report.html"), vec!["persona"]),
        (weights.clone(), vec!["loss"]),
    ] {
        let mut c = bin();
        c.arg(args[0]).arg(&f.base);
        if args[0] == "persona" {
            c.arg("--messages").arg(&f.messages).args(["--persona", "Sara"]);
        } else {
            c.arg(f.root.join("Sara.jsonl"));
        }
        let o = c.arg("--html").arg(&target).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{target:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("input"), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = bin().arg("split").arg(&f.messages).arg("-o").arg(&f.messages).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&weights).unwrap(), before);
    assert_eq!(std::fs::read(&f.messages).unwrap(), messages);
    assert!(!f.base.join("report.html").exists());
}

/// `--holdout-split` applies to samples only: blocks, token files and preference pairs carry no reply times,
/// and training on them with the flag is refused rather than silently ignoring the split.
#[test]
fn holdout_split_refuses_inputs_without_reply_times() {
    let f = fixture();
    let blocks = f.root.join("blocks.jsonl");
    std::fs::write(&blocks, "{\"input_ids\": [1, 2, 3], \"labels\": [1, 2, 3]}\n").unwrap();
    let prefs = f.root.join("prefs.jsonl");
    std::fs::write(&prefs, "{\"prompt\": \"hi\", \"chosen\": \"yo\", \"rejected\": \"no\"}\n").unwrap();
    for (data, extra) in [(&blocks, vec![]), (&prefs, vec!["--dpo"])] {
        let o = crate::other("banter-train")
            .arg(data)
            .arg("--model")
            .arg(&f.base)
            .args(["--lora", "--max-steps", "1", "--holdout-split"])
            .arg(&f.split)
            .args(extra)
            .arg("-o")
            .arg(f.root.join("refused"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--holdout-split needs samples"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// A model whose recorded split is of another chat is not evaluated on this one (its held-out part would be
/// meaningless there): exit 2, naming both chats.
#[test]
fn a_split_of_another_chat_is_refused() {
    let f = fixture();
    let other = f.root.join("other-chat.jsonl");
    std::fs::write(
        &other,
        concat!(
            "{\"chat\": \"Work\", \"ts\": \"2026-02-01T10:00:00\", \"author\": \"Sara\", \"text\": \"hi\"}\n",
            "{\"chat\": \"Work\", \"ts\": \"2026-02-01T10:05:00\", \"author\": \"Omid\", \"text\": \"Hello.\"}\n"
        ),
    )
    .unwrap();
    let o = bin()
        .arg("persona")
        .arg(&f.base)
        .arg("--adapter")
        .arg(&f.sara)
        .arg("--messages")
        .arg(&other)
        .args(["--persona", "Sara"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is of the chat \"Three Friends\"") && err.contains("Work"), "{err}");
    // And banter-train will not apply it to samples of another chat.
    let samples = f.root.join("work-samples.jsonl");
    let line = "{\"messages\": [{\"role\": \"user\", \"name\": \"A\", \"content\": \"Hello.\"}, {\"role\": \"assistant\", \"content\": \"hi\"}], \"meta\": {\"chat\": \"Work\", \"ts\": \"2026-02-01T10:05:00\"}}\n";
    std::fs::write(&samples, line).unwrap();
    let o = crate::train_with_split(f, &samples, &f.root.join("work-lora"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no sample comes from it"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
