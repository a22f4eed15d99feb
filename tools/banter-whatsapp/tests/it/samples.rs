//! `samples` through the binary.

use crate::{bin, data};

#[test]
fn persona_samples_from_an_export() {
    let export = data().join("android_en_us_12h/WhatsApp Chat with Trip.txt");
    let out = bin().args(["samples", "--persona", "Sara", "-q"]).arg(&export).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recs: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 1, "{recs:?}");
    let m = &recs[0]["messages"];
    assert_eq!(m[0], serde_json::json!({"role": "user", "content": "Hey everyone!", "name": "A"}));
    assert_eq!(m[1], serde_json::json!({"role": "assistant", "content": "hi\nhow are you?"}));
    assert_eq!(recs[0]["source"], "whatsapp");
}

#[test]
fn asimbot_text_and_validate_accepts_it() {
    let export = data().join("ios_en_us_12h/WhatsApp Chat with Sam.txt");
    let out = bin().args(["samples", "--persona", "Jo", "--template", "asimbot", "-q"]).arg(&export).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["text"], "<USR_A> hi\n<SYS> hey, dinner at 8?");
}

#[test]
fn unknown_persona_lists_the_authors() {
    let export = data().join("android_de/WhatsApp Chat mit Familie.txt");
    bin()
        .args(["samples", "--persona", "sara"])
        .arg(&export)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--persona \"sara\" wrote no message"))
        .stderr(predicates::str::contains("\"Sara\" (2)"));
    bin().args(["samples", "--list-authors"]).arg(&export).assert().success().stdout("1\tAli\n2\tSara\n");
}

#[test]
fn samples_from_messages_jsonl_and_pii_redaction() {
    let dir = tempfile::tempdir().unwrap();
    let msgs = dir.path().join("m.jsonl");
    std::fs::write(
        &msgs,
        concat!(
            r#"{"chat":"c","ts":"2023-01-15T21:00:00","author":"Ali","text":"call me on 09121234567","kind":"text"}"#,
            "\n",
            r#"{"chat":"c","ts":"2023-01-15T21:01:00","author":"Sara","text":"ok, mail me at s@x.io","kind":"text"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out_path = dir.path().join("s.jsonl");
    bin()
        .args(["samples", "--persona", "Sara", "--redact-pii", "-q", "-o"])
        .arg(&out_path)
        .arg(&msgs)
        .assert()
        .success();
    let s = std::fs::read_to_string(&out_path).unwrap();
    assert!(s.contains("call me on [PHONE]") && s.contains("mail me at [EMAIL]"), "{s}");
}
