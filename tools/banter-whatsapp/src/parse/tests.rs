//! Unit tests of `parse`.

use super::*;

fn msgs(text: &str) -> (Vec<Message>, ParseReport) {
    let lines: Vec<&str> = text.lines().collect();
    parse(&lines, "c", None)
}

#[test]
fn multiline_and_dates_inside_messages() {
    let (m, r) =
        msgs("09/02/2023, 21:05 - Ali: first line\nsecond line\n10/02/2023 was the date\n13/02/2023, 08:00 - Sara: ok");
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].text, "first line\nsecond line\n10/02/2023 was the date");
    assert_eq!(m[1].ts, "2023-02-13T08:00:00");
    assert_eq!(r.date_order, Some(DateOrder::Dmy));
    assert!(!r.date_order_ambiguous);
}

#[test]
fn month_first_from_fields_over_12() {
    let (m, r) = msgs("2/13/23, 9:05 PM - Ali: hi\n2/14/23, 12:01 AM - Sara: yo");
    assert_eq!(r.date_order, Some(DateOrder::Mdy));
    assert_eq!(m[0].ts, "2023-02-13T21:05:00");
    assert_eq!(m[1].ts, "2023-02-14T00:01:00");
}

#[test]
fn ambiguous_defaults_to_day_first() {
    let (_, r) = msgs("01/02/2023, 10:00 - Ali: hi");
    assert_eq!(r.date_order, Some(DateOrder::Dmy));
    assert!(r.date_order_ambiguous);
}

#[test]
fn system_lines_and_kinds() {
    let (m, _) = msgs(concat!(
        "09/02/2023, 21:05 - Messages and calls are end-to-end encrypted. No one outside of this chat can read them.\n",
        "09/02/2023, 21:05 - Ali created group \"Trip: Shiraz\"\n",
        "09/02/2023, 21:06 - Ali changed the subject from \"a\" to \"b: c\"\n",
        "09/02/2023, 21:07 - Ali: <Media omitted>\n",
        "09/02/2023, 21:08 - Sara: This message was deleted\n",
        "09/02/2023, 21:09 - Sara: see you <This message was edited>\n",
        "09/02/2023, 21:10 - ~\u{202F}Reza - Home: hi there\n",
    ));
    let kinds: Vec<&str> = m.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["system", "system", "system", "media", "deleted", "text", "text"]);
    assert!(m[..3].iter().all(|m| m.author.is_none()));
    assert_eq!(m[5].text, "see you");
    assert_eq!(m[5].edited, Some(true));
    assert_eq!(m[6].author.as_deref(), Some("~\u{202F}Reza - Home"));
}

#[test]
fn ios_notice_under_the_chat_name_is_system() {
    let (m, _) = msgs(concat!(
        "[09/02/2023, 21:05:11] Family: \u{200E}Messages and calls are end-to-end encrypted.\n",
        "[09/02/2023, 21:05:12] Family: \u{200E}Ali added Sara\n",
        "[09/02/2023, 21:06:00] Ali: \u{200E}image omitted\n",
        "[09/02/2023, 21:06:30] Ali: \u{200E}<attached: 00000012-PHOTO-2023-02-09-21-06-30.jpg>\n",
    ));
    assert_eq!(m[0].author, None);
    assert_eq!(m[1].author, None);
    assert_eq!(m[2].kind, MessageKind::Media);
    assert_eq!(m[3].attachment.as_deref(), Some("00000012-PHOTO-2023-02-09-21-06-30.jpg"));
}

#[test]
fn preamble_and_out_of_order_are_reported() {
    let (m, r) = msgs("junk before\n09/02/2023, 21:05 - Ali: b\n09/02/2023, 20:05 - Ali: a");
    assert_eq!(r.preamble_lines, vec![1]);
    assert_eq!(r.out_of_order, 1);
    assert_eq!(m[1].fields.get("out_of_order"), Some(&serde_json::Value::Bool(true)));
}
