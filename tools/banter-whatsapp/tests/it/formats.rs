//! One test per class of export that other parsers' test suites contain and banter once missed, written in
//! shapes the parser was not designed around.

use banter_core::records::MessageKind;
use banter_whatsapp::parse::{DateOrder, parse};

fn run(text: &str) -> (Vec<banter_core::records::Message>, banter_whatsapp::parse::ParseReport) {
    let lines: Vec<&str> = text.lines().collect();
    parse(&lines, "Family", None)
}

fn stamps(m: &[banter_core::records::Message]) -> Vec<&str> {
    m.iter().map(|m| m.ts.as_str()).collect()
}

#[test]
fn two_digit_years_first_are_read_as_years() {
    let (m, r) = run(concat!(
        "19-09-05, 21:10 - Ana: are we on for tomorrow\n",
        "19-09-05, 21:12 - Ben: yes\n",
        "19-09-06, 08:01 - Ana: leaving now\n",
        "19-09-07, 10:30 - Ben: thanks for yesterday\n",
    ));
    assert_eq!(r.date_order, Some(DateOrder::Ymd), "{}", r.date_order_evidence);
    assert_eq!(
        stamps(&m),
        ["2019-09-05T21:10:00", "2019-09-05T21:12:00", "2019-09-06T08:01:00", "2019-09-07T10:30:00"]
    );
    assert_eq!(r.out_of_order, 0);
    // One message: read day-first it would be 2005, before WhatsApp existed.
    let (m, _) = run("19-09-05, 21:10 - Ana: hi\n");
    assert_eq!(m[0].ts, "2019-09-05T21:10:00");
    // The same dates day-first stay day-first (the days move, the years do not).
    let (m, r) = run("05-09-19, 21:10 - Ana: a\n06-09-19, 08:01 - Ben: b\n07-09-19, 10:30 - Ana: c\n");
    assert_eq!((r.date_order, m[2].ts.as_str()), (Some(DateOrder::Dmy), "2019-09-07T10:30:00"));
}

#[test]
fn every_attachment_marker_form_is_media() {
    let (m, _) = run(concat!(
        "[05/09/2019, 21:10:01] Ana: < attached: 00000042-PHOTO-2019-09-05-21-10-01.jpg >\n",
        "05/09/2019, 21:11 - Ana: IMG-20190905-WA0003.jpg ‹attached>\n",
        "05/09/2019, 21:12 - Ben: VID-20190905-WA0001.mp4 <attached>\n",
        "05/09/2019, 21:13 - Ben: it is <attached> to the wall\n",
    ));
    let got: Vec<(MessageKind, Option<&str>)> = m.iter().map(|m| (m.kind, m.attachment.as_deref())).collect();
    assert_eq!(
        got,
        [
            (MessageKind::Media, Some("00000042-PHOTO-2019-09-05-21-10-01.jpg")),
            (MessageKind::Media, Some("IMG-20190905-WA0003.jpg")),
            (MessageKind::Media, Some("VID-20190905-WA0001.mp4")),
            (MessageKind::Text, None),
        ]
    );
}

#[test]
fn a_midnight_hour_on_a_12_hour_clock_is_a_header_not_text() {
    let (m, r) = run(concat!(
        "10/3/19, 11:58 p. m. - Ana: almost midnight\n",
        "11/3/19, 00:08 a. m. - Ana created group \"Trip\"\n",
        "11/3/19, 9:15 a. m. - Ben: morning\n",
    ));
    assert_eq!(m.len(), 3, "{m:?}");
    assert_eq!(
        (m[1].ts.as_str(), m[1].kind, m[1].author.as_deref()),
        ("2019-03-11T00:08:00", MessageKind::System, None)
    );
    assert!(r.invalid_headers.is_empty() && r.headers_not_taken.is_empty());
}

#[test]
fn header_shapes_other_parsers_see() {
    for (text, want_ts, want_author) in [
        ("12.07.2017 - 22:35:22; Ana: hi\n13.07.2017 - 08:00:01; Ben: yo", "2017-07-12T22:35:22", "Ana"),
        ("13. 6. 2018. 21:25:15 a: m\n14. 6. 2018. 07:00:00 b: n", "2018-06-13T21:25:15", "a"),
        ("12,07,2017, 22:35 - Ana: hi\n13,07,2017, 08:00 - Ben: yo", "2017-07-12T22:35:00", "Ana"),
        ("07/2017/12, 22:35 - Ana: hi\n07/2017/13, 08:00 - Ben: yo", "2017-07-12T22:35:00", "Ana"),
        ("2017/13/07, 22:35 - Ana: hi\n2017/14/07, 08:00 - Ben: yo", "2017-07-13T22:35:00", "Ana"),
        ("22:35, 12/07/2017 - Ana: hi\n08:00, 13/07/2017 - Ben: yo", "2017-07-12T22:35:00", "Ana"),
        ("[22:35:01, 13/07/2017] Ana: hi\n[08:00:00, 14/07/2017] Ben: yo", "2017-07-13T22:35:01", "Ana"),
    ] {
        let (m, r) = run(text);
        assert_eq!(m.len(), 2, "{text}: {m:?} {r:?}");
        assert_eq!((m[0].ts.as_str(), m[0].author.as_deref()), (want_ts, Some(want_author)), "{text}: {r:?}");
    }
}

#[test]
fn the_encryption_notice_is_system_whoever_the_export_names() {
    let (m, _) = run(concat!(
        "12/07/2017, 22:35 - Family: Messages and calls are end-to-end encrypted. No one outside of this chat can read them.\n",
        "12/07/2017, 22:36 - Familia: Los mensajes y las llamadas están cifrados de extremo a extremo.\n",
        "12/07/2017, 22:37 - Ana: hi\n",
        "12/07/2017, 22:38 - Ben: hi\n",
        "12/07/2017, 22:39 - Ana: messages and calls are end-to-end encrypted? since when\n",
    ));
    assert_eq!((m[0].kind, m[0].author.as_deref()), (MessageKind::System, None));
    assert_eq!((m[1].kind, m[1].author.as_deref()), (MessageKind::System, None));
    // Later in the chat, a person quoting the notice is still that person.
    assert_eq!((m[4].kind, m[4].author.as_deref()), (MessageKind::Text, Some("Ana")));
}

#[test]
fn a_second_shape_is_taken_when_it_fits_in_time_and_a_quoted_chat_is_reported() {
    let (m, r) = run(concat!(
        "12/07/2017, 22:35 - Ana: one\n",
        "12/07/2017, 22:36 - Ben: two\n",
        "[12/07/2017, 22:37:10] Ana: three (another phone's shape)\n",
        "12/07/2017, 22:38 - Ben: look what I found:\n",
        "[03/01/2009, 10:00:00] Old: a quoted line from an old chat\n",
        "12/07/2017, 22:39 - Ana: ha\n",
    ));
    let texts: Vec<&str> = m.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.len(), 5, "{texts:?}");
    assert_eq!(m[2].ts, "2017-07-12T22:37:10");
    assert!(m[3].text.ends_with("a quoted line from an old chat"), "{:?}", m[3].text);
    assert_eq!(r.headers_not_taken, vec![5]);
    assert_eq!(r.shapes.len(), 2, "{:?}", r.shapes);
}

/// The escape hatch and the error that points to it, through the binary.
#[test]
fn format_reads_an_unknown_shape_and_the_error_says_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    let chat = dir.path().join("chat.txt");
    std::fs::write(&chat, "<31|12|19 23h59> Ana: hi\n<01|01|20 00h01> Ben: happy new year\n").unwrap();
    let o = crate::bin().args(["parse", chat.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Tried:") && err.contains("--format"), "{err}");
    let o = crate::bin().args(["parse", chat.to_str().unwrap(), "--format", "<%d|%m|%y %Hh%M> "]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\"ts\":\"2020-01-01T00:01:00\"") && out.contains("\"author\":\"Ben\""), "{out}");
    let o = crate::bin().args(["parse", chat.to_str().unwrap(), "--format", "%d|%m %H"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}
