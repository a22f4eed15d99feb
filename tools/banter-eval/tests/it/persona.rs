//! What the persona figures say about models trained on one speaker, and that the held-out part stays out.

use crate::{fixture, persona};

fn model(r: &serde_json::Value, i: usize) -> &serde_json::Value {
    &r["persona"]["models"][i]
}

#[test]
fn an_adapter_on_one_speaker_is_attributed_to_that_speaker_more_than_to_another_and_than_the_base() {
    let f = fixture();
    let (code, r) = persona(&["--persona", "Sara", "--adapter"], &[&f.sara]);
    assert_eq!(code, 0);
    let p = &r["persona"];
    assert!(p["split_source"].as_str().unwrap().starts_with("recorded with"), "{}", p["split_source"]);
    let (adapted, base) = (model(&r, 0), model(&r, 1));
    assert!(
        adapted["name"].as_str().unwrap().contains("sara-lora") && !base["name"].as_str().unwrap().contains("lora")
    );
    let att = |m: &serde_json::Value| m["figures"]["attribution"].as_f64().unwrap();
    let sim = |m: &serde_json::Value, who: &str| m["figures"]["style_similarity"][who].as_f64().unwrap();
    let dist = |m: &serde_json::Value| m["figures"]["style_distance"].as_f64().unwrap();
    // Sara's adapter writes like Sara: attributed to her, nearer her style than Omid's or Lena's, and more so
    // than the base it was trained from.
    assert!(att(adapted) >= 0.6, "{}", adapted["figures"]);
    assert!(att(adapted) > att(base) + 0.3, "adapter {} vs base {}", att(adapted), att(base));
    assert!(
        sim(adapted, "Sara") > sim(adapted, "Omid") && sim(adapted, "Sara") > sim(adapted, "Lena"),
        "{}",
        adapted["figures"]
    );
    assert!(dist(adapted) < dist(base), "style distance {} vs base {}", dist(adapted), dist(base));
    assert!(adapted["heldout_loss"].as_f64().unwrap() < base["heldout_loss"].as_f64().unwrap());
    // The same adapter measured as Omid: hardly any of its replies are his.
    let (_, as_omid) = persona(&["--persona", "Omid", "--no-base", "--adapter"], &[&f.sara]);
    assert!(att(model(&as_omid, 0)) + 0.3 < att(adapted), "{}", model(&as_omid, 0)["figures"]);
    // Omid's own adapter is his.
    let (_, omid) = persona(&["--persona", "Omid", "--no-base", "--adapter"], &[&f.omid]);
    assert!(att(model(&omid, 0)) >= 0.6, "{}", model(&omid, 0)["figures"]);
    // The classifier itself tells the real held-out messages apart, well above always guessing one speaker.
    let a = &p["attributor"];
    assert!(a["accuracy"].as_f64().unwrap() > a["chance"].as_f64().unwrap() + 0.3, "{a}");
    // Real replies and the generated ones side by side.
    let ex = p["examples"].as_array().unwrap();
    assert_eq!(ex.len(), 16);
    assert_eq!(ex[0]["generated"].as_array().unwrap().len(), 2);
}

#[test]
fn held_out_messages_never_reach_training() {
    let f = fixture();
    let split: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f.split).unwrap()).unwrap();
    let cut = split["cutoff"].as_str().unwrap();
    // Sara's samples at or after the cutoff: exactly those banter-train left out.
    let samples = std::fs::read_to_string(f.root.join("Sara.jsonl")).unwrap();
    let all = samples.lines().count();
    let late = samples
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["meta"]["ts"].as_str().unwrap() >= cut)
        .count();
    assert!(late > 10 && late < all);
    let want = format!("{late} of {all} sample(s) fall at or after {cut} and were left out");
    assert!(f.sara_log.contains(&want), "{}", f.sara_log);
    // The split is recorded with the adapter, unchanged.
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.sara.join("eval_split.json")).unwrap()).unwrap();
    assert_eq!(recorded, split);
    // Every context persona evaluates answers a reply from the held-out part.
    let (_, r) = persona(&["--persona", "Sara", "--no-base", "--adapter"], &[&f.sara]);
    for e in r["persona"]["examples"].as_array().unwrap() {
        assert!(e["ts"].as_str().unwrap() >= cut, "{e}");
    }
    // Samples that cannot say when they were written are refused, not trained on.
    let plain = f.root.join("plain.jsonl");
    std::fs::write(
        &plain,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n",
    )
    .unwrap();
    let o = crate::train_with_split(f, &plain, &f.root.join("never"));
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("carry no meta.ts"));
    assert!(!f.root.join("never").exists());
}

/// Contexts answered in batches get the replies they get one at a time (reply i sampled with seed + i).
#[test]
fn batched_replies_equal_replies_one_at_a_time() {
    let f = fixture();
    let replies = |batch: &str| {
        let (_, r) = persona(&["--persona", "Sara", "--batch", batch, "--adapter"], &[&f.sara]);
        r["persona"]["examples"].as_array().unwrap().iter().map(|e| e["generated"].clone()).collect::<Vec<_>>()
    };
    let one = replies("1");
    assert_eq!(one.len(), 16);
    assert_eq!(one, replies("3"), "batches of 3 (the last one short)");
    assert_eq!(one, replies("8"));
}
