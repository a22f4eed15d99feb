//! Every check fires on its fixture lines and on nothing in the good fixture.

use std::collections::BTreeMap;

use crate::{bin, data};

#[test]
fn good_samples_pass_and_each_bad_line_fails_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.jsonl");
    bin()
        .arg(data("good.jsonl"))
        .arg(data("bad.jsonl"))
        .arg("--rejects")
        .arg(&rejects)
        .args(["-q", "--min-score", "0"])
        .assert()
        .code(0);
    let expected: BTreeMap<u64, String> = std::fs::read_to_string(data("bad.expected"))
        .unwrap()
        .lines()
        .map(|l| {
            let (n, c) = l.split_once(' ').unwrap();
            (n.parse().unwrap(), c.to_string())
        })
        .collect();
    let mut got = BTreeMap::new();
    for line in std::fs::read_to_string(&rejects).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = v["file"].as_str().unwrap();
        assert!(file.ends_with("bad.jsonl"), "a good sample was rejected: {line}");
        let checks: Vec<String> =
            v["reasons"].as_array().unwrap().iter().map(|r| r["check"].as_str().unwrap().to_string()).collect();
        got.insert(v["line"].as_u64().unwrap(), checks);
    }
    for (line, check) in &expected {
        let checks = got.get(line).unwrap_or_else(|| panic!("bad.jsonl:{line} ({check}) was kept"));
        assert!(checks.contains(check), "bad.jsonl:{line}: expected {check}, got {checks:?}");
    }
    assert_eq!(got.len(), expected.len(), "rejected lines {:?}", got.keys().collect::<Vec<_>>());
}

#[test]
fn duplicates_name_the_first_occurrence_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("r.jsonl");
    bin().arg(data("good.jsonl")).arg(data("bad.jsonl")).arg("--rejects").arg(&rejects).arg("-q").assert().code(1);
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert!(text.contains("good.jsonl:1\""), "{text}");
}

#[test]
fn checks_can_be_disabled_warned_and_tuned() {
    // too-short off: the two short replies are kept.
    let (_, r) = crate::json_report(bin().arg(data("bad.jsonl")).args(["--disable", "too-short"]));
    assert!(r["checks"].get("too-short").is_none());
    let (_, r2) = crate::json_report(bin().arg(data("bad.jsonl")));
    // "ok", «خوبم», and two bare URLs (also gibberish, so still rejected without too-short).
    assert_eq!(r2["checks"]["too-short"]["rejected"], 3);
    assert_eq!(r["counts"]["valid"].as_u64().unwrap(), r2["counts"]["valid"].as_u64().unwrap() + 2);
    // --min-words 1 keeps «خوبم» and "ok".
    let (_, r) = crate::json_report(bin().arg(data("bad.jsonl")).args(["--min-words", "1"]));
    assert_eq!(r["checks"]["too-short"]["rejected"], 0);
    // echo as a warning: reported, kept.
    let (_, r) = crate::json_report(bin().arg(data("bad.jsonl")).args(["--warn", "echo"]));
    assert_eq!(r["checks"]["echo"]["warned"], 2);
    assert_eq!(r["checks"]["echo"]["severity"], "warn");
}

#[test]
fn pii_is_reported_then_redacted_or_rejected() {
    let (code, r) = crate::json_report(bin().arg(data("pii.jsonl")));
    assert_eq!(code, 0);
    assert_eq!(r["checks"]["pii"]["warned"], 4);
    assert_eq!(r["counts"]["valid"], 4);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clean.jsonl");
    bin().arg(data("pii.jsonl")).arg("--redact-pii").arg("-o").arg(&out).arg("-q").assert().success();
    let clean = std::fs::read_to_string(&out).unwrap();
    for secret in ["sara@example.com", "912 123 4567", "۰۹۱۲۱۲۳۴۵۶۷", "8.8.8.8", "4111 1111"] {
        assert!(!clean.contains(secret), "{secret} survived: {clean}");
    }
    assert!(
        clean.contains("[EMAIL]") && clean.contains("[PHONE]") && clean.contains("[IP]") && clean.contains("[CARD]")
    );
    assert!(clean.contains("192.168.1.1"), "private addresses are not PII");
    let (code, r) = crate::json_report(bin().arg(data("pii.jsonl")).args(["--reject", "pii"]));
    assert_eq!((code, r["counts"]["valid"].as_u64()), (1, Some(0)));
}

#[test]
fn near_duplicates_only_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("n.jsonl");
    std::fs::write(
        &f,
        "{\"text\":\"The quick brown fox jumps over the lazy dog near the river bank in the warm morning sun today.\"}\n\
         {\"text\":\"The quick brown fox jumps over the lazy dog near the river bank in the warm mornin sun today.\"}\n",
    )
    .unwrap();
    let (_, r) = crate::json_report(bin().arg(&f));
    assert_eq!(r["counts"]["valid"], 2);
    let (_, r) = crate::json_report(bin().arg(&f).arg("--near-dup"));
    assert_eq!(r["checks"]["near-duplicate"]["rejected"], 1);
}

#[test]
fn web_profile_applies_gopher_rules() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pages.jsonl");
    let article = "Green tea is made from the leaves of Camellia sinensis that have not undergone the same withering \
        and oxidation process used to make oolong and black tea. Green tea originated in China, and since then its \
        production and manufacture has spread to other countries in East Asia. Several varieties of green tea exist, \
        which differ substantially based on the variety of C. sinensis used, growing conditions, and harvest time.";
    let menu = "Home\nAbout\nContact\nHome\nAbout\nContact\nLogin";
    std::fs::write(&f, format!("{}\n{}\n", serde_json::json!({"text": article}), serde_json::json!({"text": menu})))
        .unwrap();
    let (code, r) = crate::json_report(bin().arg(&f).args(["--profile", "web"]));
    assert_eq!(code, 0);
    assert_eq!(r["counts"]["valid"], 1);
    assert_eq!(r["checks"]["gopher-quality"]["rejected"], 1);
    assert!(r["checks"].get("too-short").is_none());
}

/// Templated but distinct pages (Wikipedia stubs that differ in names and numbers) are not duplicates:
/// numbers are kept by the normaliser (`۱۲` is `12`, but `12` is not `57`), while a page repeated with
/// only its punctuation and case changed still is a duplicate.
#[test]
fn templated_pages_that_differ_in_numbers_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("stubs.jsonl");
    let names = ["Aberfeldy", "Bryncoch", "Cwmavon", "Dolgellau", "Eglwyswrw"];
    let crops = ["barley", "oats", "potatoes", "flax", "turnips"];
    let mut lines = String::new();
    for i in 0..25usize {
        let text = format!(
            "Article {}, topic {}. {} {} is a village in district {} with a population of {} as of {}. It lies {} \
             kilometres from the regional capital, at an elevation of {} metres. The local economy depends on {} \
             and on a market held every {} days since {}.",
            12 + 37 * i,
            483 + 211 * i,
            names[i % 5],
            i / 5 + 1,
            3 + i % 7,
            1200 + 97 * i,
            1981 + i,
            4 + 3 * i,
            110 + 13 * i,
            crops[(i * 3) % 5],
            7 + i % 4,
            1850 + 5 * i
        );
        lines.push_str(&format!("{}\n", serde_json::json!({"text": text})));
    }
    // The first page again, in other case and punctuation: still a duplicate.
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    let again = first["text"].as_str().unwrap().to_uppercase().replace(',', " ;");
    lines.push_str(&format!("{}\n", serde_json::json!({"text": again})));
    std::fs::write(&f, lines).unwrap();
    let (_, r) = crate::json_report(bin().arg(&f).args(["--profile", "web"]));
    assert_eq!(r["counts"]["valid"], 25, "{r}");
    assert_eq!(r["checks"]["duplicate"]["rejected"], 1, "{r}");
}
