//! Golden exports: one per format family, with hand-written expected records.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use crate::{bin, data, parse};

fn cases() -> Vec<(String, PathBuf, Vec<serde_json::Value>)> {
    let mut out = Vec::new();
    for dir in fs::read_dir(data()).unwrap() {
        let dir = dir.unwrap().path();
        let expected = dir.join("expected.jsonl");
        if !expected.exists() {
            continue;
        }
        let export = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "txt"))
            .unwrap();
        let want = fs::read_to_string(&expected).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        out.push((dir.file_name().unwrap().to_string_lossy().into_owned(), export, want));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 15, "golden exports missing");
    out
}

fn check(name: &str, got: &[serde_json::Value], want: &[serde_json::Value]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{name}: record {}", i + 1);
    }
    assert_eq!(got.len(), want.len(), "{name}: number of records");
}

#[test]
fn every_format_family_parses_to_its_golden_records() {
    for (name, export, want) in cases() {
        check(&name, &parse(&export, &[]), &want);
    }
}

#[test]
fn zip_exports_read_the_chat_inside() {
    let dir = tempfile::tempdir().unwrap();
    for (name, export, want) in cases().into_iter().take(4) {
        let zpath = dir.path().join(format!("{name}.zip"));
        let mut z = zip::ZipWriter::new(fs::File::create(&zpath).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("00000012-PHOTO-2023-01-15-21-08-00.jpg", opts).unwrap();
        z.write_all(&[0xFF, 0xD8, 0xFF]).unwrap();
        z.start_file("_chat.txt", opts).unwrap();
        z.write_all(&fs::read(&export).unwrap()).unwrap();
        z.finish().unwrap();
        let chat = want[0]["chat"].as_str().unwrap().to_string();
        check(&name, &parse(&zpath, &["--chat", &chat]), &want);
    }
}

#[test]
fn utf16_exports_parse_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for (name, export, want) in cases().into_iter().take(6) {
        let text = fs::read_to_string(&export).unwrap();
        let text = text.trim_start_matches('\u{feff}');
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        let p = dir.path().join(export.file_name().unwrap());
        fs::write(&p, bytes).unwrap();
        check(&name, &parse(&p, &[]), &want);
    }
}

#[test]
fn crlf_and_cr_line_ends_parse_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for (name, export, want) in cases() {
        let text = fs::read_to_string(&export).unwrap().replace("\r\n", "\n");
        for (tag, nl) in [("crlf", "\r\n"), ("cr", "\r")] {
            let sub = dir.path().join(format!("{name}-{tag}"));
            fs::create_dir_all(&sub).unwrap();
            let p = sub.join(export.file_name().unwrap());
            fs::write(&p, text.replace('\n', nl)).unwrap();
            check(&format!("{name} ({tag})"), &parse(&p, &[]), &want);
        }
    }
}

#[test]
fn report_counts_kinds_authors_and_date_order() {
    let export = data().join("android_en_us_12h/WhatsApp Chat with Trip.txt");
    let dir = tempfile::tempdir().unwrap();
    let out = bin().arg("parse").arg(&export).arg("-o").arg(dir.path().join("m.jsonl")).arg("--json").output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["parse"]["messages"], 7);
    assert_eq!(r["parse"]["kinds"]["system"], 2);
    assert_eq!(r["parse"]["date_order"], "mdy");
    assert_eq!(r["parse"]["date_order_ambiguous"], false);
    assert_eq!(r["parse"]["authors"][0][0], "Ali");
}

#[test]
fn list_authors_and_forced_date_order() {
    let export = data().join("ambiguous_attachment_mdy/WhatsApp Chat with Pics.txt");
    bin().args(["parse", "--list-authors"]).arg(&export).assert().success().stdout("2\tAli\n1\tSara\n");
    let recs = parse(&export, &["--date-order", "dmy"]);
    assert_eq!(recs[0]["ts"], "2023-09-02T21:05:00");
}

#[test]
fn not_an_export_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    fs::write(&p, "just some notes\nnothing else\n").unwrap();
    bin().arg("parse").arg(&p).assert().code(3).stderr(predicates::str::contains("no WhatsApp message headers found"));
    bin().arg("parse").arg("/nonexistent/chat.txt").assert().code(4);
    let z = dir.path().join("x.zip");
    fs::write(&z, b"PK\x03\x04garbage").unwrap();
    bin().arg("parse").arg(&z).assert().code(3);
}

#[test]
fn preamble_lines_are_reported_not_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.txt");
    fs::write(&p, "exported by a tool\n\n15/01/2023, 21:05 - Ali: hi\n").unwrap();
    bin().arg("parse").arg(&p).assert().success().stderr(predicates::str::contains(
        "2 line(s) before the first message were not part of any message (lines 1, 2)",
    ));
}

/// Bugs reported against other parsers, each a regression test here.
#[test]
fn regressions_of_other_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        // whatstk: NNBSP / NBSP before AM-PM not recognised.
        (
            "nbsp.txt",
            "1/15/23, 9:05\u{00A0}PM - Ali: hi\n1/16/23, 9:05\u{00A0}AM - Sara: yo\n",
            "2023-01-15T21:05:00",
            "Ali",
        ),
        // whatstk: 2023-11-02 exports read as day 11 of February.
        ("iso.txt", "2023-11-02, 09:15 - Ali: hi\n", "2023-11-02T09:15:00", "Ali"),
        // whatsapp-chat-parser: CJK AM/PM markers dropped (afternoon read as morning).
        ("cjk.txt", "2023/1/15 下午9:05 - 小明: 你好\n", "2023-01-15T21:05:00", "小明"),
        ("ja.txt", "2023/01/15 午後9:05 - 花子: こんにちは\n", "2023-01-15T21:05:00", "花子"),
        // Several parsers: the first line is lost when the file starts with a BOM.
        (
            "bom.txt",
            "\u{feff}15/01/2023, 21:05 - Ali: first\n16/01/2023, 21:05 - Ali: second\n",
            "2023-01-15T21:05:00",
            "Ali",
        ),
        // rwhatsapp / chat-miner: "a. m." with NBSP inside.
        ("es.txt", "15/1/23, 9:05\u{00A0}a.\u{00A0}m. - Ali: hola\n", "2023-01-15T09:05:00", "Ali"),
    ];
    for (file, text, ts, author) in cases {
        let p = dir.path().join(file);
        fs::write(&p, text).unwrap();
        let recs = parse(&p, &[]);
        assert_eq!(recs[0]["ts"], *ts, "{file}");
        assert_eq!(recs[0]["author"], *author, "{file}");
    }
    // whatsapp-chat-parser: system lines with ": " split into a fake author.
    let p = dir.path().join("subject.txt");
    fs::write(&p, "15/01/2023, 21:05 - Ali changed the subject from \"Trip\" to \"Trip: Shiraz 2023\"\n").unwrap();
    let recs = parse(&p, &[]);
    assert_eq!(recs[0]["author"], serde_json::Value::Null);
    assert_eq!(recs[0]["kind"], "system");
}
