//! The seed journeys' WhatsApp cases (issue 28): the date order that makes every header a real date wins,
//! WhatsApp's own media file names are attachments (and date evidence), a one-message file parses, and
//! `--strip-urls`.

use crate::{bin, parse};

/// `%y-%d-%m` (two-digit year first, the day before the month), as one peer parser writes its fixtures.
#[test]
fn year_day_month_files_read_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ydm.txt");
    let mut text = String::new();
    for (i, day) in (1..=28).enumerate() {
        text.push_str(&format!("[15-{day:02}-08 10:{:02}:00] Ali: message {i}\n", i % 60));
    }
    std::fs::write(&f, text).unwrap();
    let out = bin().arg("parse").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("dates ydm") && !err.contains("invalid") && !err.contains("impossible"), "{err}");
    let records = parse(&f, &[]);
    assert_eq!(records.len(), 28, "every header is a message");
    assert_eq!(records[0]["ts"], "2015-08-01T10:00:00");
    assert_eq!(records[27]["ts"], "2015-08-28T10:27:00");
}

/// iOS names media `2015-08-04-PHOTO-00004762.jpg`: an attachment, whose date tells an ambiguous order.
#[test]
fn whatsapp_media_names_are_attachments_and_date_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("media.txt");
    std::fs::write(
        &f,
        "[04/08/2015, 10:00:00] Ali: <attached: 2015-08-04-PHOTO-00004762.jpg>\n\
         [04/08/2015, 10:01:00] Sara: 2015-08-04-PHOTO-00004763.jpg\n\
         [04/08/2015, 10:02:00] Sara: nice photo\n",
    )
    .unwrap();
    let records = parse(&f, &[]);
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["attachment"], "2015-08-04-PHOTO-00004762.jpg");
    assert_eq!(records[1]["kind"], "media", "{}", records[1]);
    // 04/08 is both 4 August and 8 April: the attachment names decide.
    assert_eq!(records[2]["ts"], "2015-08-04T10:02:00");
}

/// A file with one message (and a continuation line) is a chat, not "no headers found".
#[test]
fn a_one_message_file_parses() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("one.txt");
    std::fs::write(&f, "12/01/2020, 10:00 - Alice: hi there\nhow are you\n").unwrap();
    let records = parse(&f, &[]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["text"], "hi there\nhow are you");
    // One header whose date exists only as year-day-month.
    std::fs::write(&f, "[15-25-08 10:00:00] Ali: hi\nsecond line\n").unwrap();
    let records = parse(&f, &[]);
    assert_eq!((records.len(), records[0]["ts"].as_str()), (1, Some("2015-08-25T10:00:00")));
}

/// `--strip-urls` removes web addresses from messages; a message of links only is dropped.
#[test]
fn strip_urls_removes_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("links.txt");
    let mut text = String::new();
    for i in 0..6 {
        text.push_str(&format!("[01/02/2021, 10:{i:02}:00] Ali: did you see this {i}?\n"));
        text.push_str(&format!("[01/02/2021, 10:{i:02}:30] Sara: yes, look https://example.com/{i} it is good\n"));
        text.push_str(&format!("[01/02/2021, 10:{i:02}:40] Sara: www.example.org/{i}\n"));
    }
    std::fs::write(&f, text).unwrap();
    let o = bin().arg("samples").arg(&f).args(["--persona", "Sara", "--strip-urls"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("http") && !out.contains("www."), "{out}");
    assert!(out.contains("yes, look it is good"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("12 message(s), 6 of them only links"));
}
