//! The gates: exit 1 when a model misses, 0 when it passes, so make and CI can stop a worse model.

use crate::{bin, fixture, persona};

#[test]
fn persona_gates_exit_1_on_a_worse_model() {
    let f = fixture();
    // Sara's adapter passes a fair bar.
    let (code, r) = persona(&["--persona", "Sara", "--min-attribution", "0.5", "--adapter"], &[&f.sara]);
    assert_eq!(code, 0, "{}", r["gate"]);
    assert_eq!(r["gate"]["passed"], true);
    // Omid's adapter as Sara, against Sara's adapter: worse, exit 1, and the report says why.
    let mut c = bin();
    c.arg("persona").arg(&f.base).arg("--messages").arg(&f.messages).args([
        "--persona",
        "Sara",
        "--samples",
        "12",
        "--no-base",
    ]);
    let o = c
        .arg("--adapter")
        .arg(&f.omid)
        .arg("--better-than")
        .arg(&f.sara)
        .args(["--json", "--threads", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exit_code"], 1);
    assert!(v["gate"]["failed"][0].as_str().unwrap().contains("is not above"), "{}", v["gate"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("gate failed"));
    // The base alone at a high bar.
    let (code, _) = persona(&["--persona", "Sara", "--min-attribution", "0.9", "--split"], &[&f.split]);
    assert_eq!(code, 1);
}

#[test]
fn loss_compares_models_and_gates() {
    let f = fixture();
    // Sara's held-out samples.
    let split: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f.split).unwrap()).unwrap();
    let cut = split["cutoff"].as_str().unwrap();
    let held: String = std::fs::read_to_string(f.root.join("Sara.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["meta"]["ts"].as_str().unwrap() >= cut)
        .map(|l| format!("{l}\n"))
        .collect();
    let data = f.root.join("held-sara.jsonl");
    std::fs::write(&data, held).unwrap();
    let run = |extra: &[&std::ffi::OsStr]| {
        let o =
            bin().arg("loss").arg(&f.base).arg(&data).args(["--json", "--threads", "1"]).args(extra).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        (o.status.code().unwrap(), v, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, v, err) = run(&["--adapter".as_ref(), f.sara.as_os_str(), "--adapter".as_ref(), f.omid.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 3, "both adapters and the base");
    let loss = |i: usize| models[i]["loss"].as_f64().unwrap();
    assert!(loss(0) < loss(1) && loss(0) < loss(2), "Sara's adapter is best on her replies: {v}");
    assert_eq!(models[0]["per_sample"].as_array().unwrap().len(), v["samples"].as_array().unwrap().len());
    assert!(err.contains("perplexity"));
    // Omid's adapter is worse than Sara's on her replies: exit 1.
    let (code, v, _) = run(&["--adapter".as_ref(), f.omid.as_os_str(), "--better-than".as_ref(), f.sara.as_os_str()]);
    assert_eq!((code, &v["gate"]["passed"]), (1, &serde_json::json!(false)));
    let (code, _, _) = run(&["--adapter".as_ref(), f.sara.as_os_str(), "--better-than".as_ref(), f.base.as_os_str()]);
    assert_eq!(code, 0);
    let (code, _, err) = run(&["--max-loss".as_ref(), "0.01".as_ref()]);
    assert_eq!(code, 1);
    assert!(err.contains("--max-loss"), "{err}");
}
