//! From lines to messages: decide the file's header shape and date order, assemble multi-line messages,
//! split authors from text, and classify kinds (text, media, deleted, system).

use std::collections::HashMap;

use banter_core::records::{Message, MessageKind};
use serde::Serialize;

use crate::header::{self, Header, Meridiem, Shape};
use crate::locale;

/// The order of day, month and year in the file's dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// Day, month, year.
    Dmy,
    /// Month, day, year.
    Mdy,
    /// Year, month, day.
    Ymd,
}

/// What parsing found out, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParseReport {
    /// Lines read.
    pub lines: u64,
    /// Messages produced.
    pub messages: u64,
    /// Messages by kind.
    pub kinds: HashMap<&'static str, u64>,
    /// Messages marked edited.
    pub edited: u64,
    /// The date order used.
    pub date_order: Option<DateOrder>,
    /// True when nothing in the file told day-first from month-first (day-first was assumed).
    pub date_order_ambiguous: bool,
    /// Why the order was chosen.
    pub date_order_evidence: String,
    /// The header shape used, e.g. `[d/m/y, h:mm:ss AM] ` or `d.m.y, hh:mm - `.
    pub shape: Option<String>,
    /// Lines before the first message (not part of any message), with their line numbers.
    pub preamble_lines: Vec<u64>,
    /// Header lines whose date or time is impossible (kept as continuation text), with line numbers.
    pub invalid_headers: Vec<u64>,
    /// Messages whose time is earlier than the previous message's (flagged, not reordered).
    pub out_of_order: u64,
    /// Authors, in order of first appearance, with message counts.
    pub authors: Vec<(String, u64)>,
}

struct Pending {
    line: u64,
    header: Header,
    /// The first line's body and the continuation lines.
    body: String,
}

/// Parses the lines of an export into messages.
pub fn parse(lines: &[&str], chat: &str, forced: Option<DateOrder>) -> (Vec<Message>, ParseReport) {
    let mut out = Vec::new();
    let rep = parse_each(lines, chat, forced, |m| {
        out.push(m);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|e| match e {});
    (out, rep)
}

/// Parses the lines of an export, handing each message to `emit` as soon as it is complete (constant
/// memory beyond the lines themselves).
pub fn parse_each<E>(
    lines: &[&str],
    chat: &str,
    forced: Option<DateOrder>,
    mut emit: impl FnMut(Message) -> Result<(), E>,
) -> Result<ParseReport, E> {
    let mut rep = ParseReport { lines: lines.len() as u64, ..Default::default() };
    // Scanning headers is the bulk of the work and independent per line: in parallel.
    let headers: Vec<Option<Header>> = {
        use rayon::prelude::*;
        lines.par_iter().with_min_len(4096).map(|l| header::scan(l)).collect()
    };

    // The file's shape: the most common among header-like lines.
    let mut votes: HashMap<Shape, usize> = HashMap::new();
    for h in headers.iter().flatten().filter(|h| h.time_ok) {
        *votes.entry(h.shape).or_default() += 1;
    }
    let Some(shape) = votes.iter().max_by_key(|(s, n)| (**n, !s.bracket)).map(|(s, _)| *s) else {
        rep.preamble_lines = (1..=lines.len() as u64).collect();
        return Ok(rep);
    };
    rep.shape = Some(describe(&shape));
    let of_shape: Vec<&Header> = headers.iter().flatten().filter(|h| h.shape == shape && h.time_ok).collect();
    let (order, ambiguous, evidence) = match forced {
        Some(o) => (o, false, "--date-order".to_string()),
        None => decide_order(&of_shape, lines, &headers, shape),
    };
    rep.date_order = Some(order);
    rep.date_order_ambiguous = ambiguous;
    rep.date_order_evidence = evidence;

    let mut count = 0u64;
    let mut pending: Option<Pending> = None;
    let mut last_ts: Option<String> = None;
    let mut author_counts: Vec<(String, u64)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let starts = match &headers[i] {
            Some(h) if h.shape == shape => {
                if h.time_ok && timestamp(h, order).is_some() {
                    true
                } else {
                    rep.invalid_headers.push(n);
                    false
                }
            }
            _ => false,
        };
        if starts {
            if let Some(p) = pending.take() {
                emit(finish(p, chat, order, &mut last_ts, &mut rep, &mut author_counts))?;
                count += 1;
            }
            let h = headers[i].expect("checked above");
            pending = Some(Pending { line: n, header: h, body: line[h.body_start..].to_string() });
        } else {
            match &mut pending {
                Some(p) => {
                    p.body.push('\n');
                    p.body.push_str(line);
                }
                None => rep.preamble_lines.push(n),
            }
        }
    }
    if let Some(p) = pending.take() {
        emit(finish(p, chat, order, &mut last_ts, &mut rep, &mut author_counts))?;
        count += 1;
    }
    rep.messages = count;
    rep.authors = author_counts;
    Ok(rep)
}

fn describe(s: &Shape) -> String {
    let d = s.date_sep;
    let time = format!("h:mm{}{}", if s.seconds { ":ss" } else { "" }, if s.twelve_hour { " AM/PM" } else { "" });
    let date = if s.year_first { format!("yyyy{d}m{d}d") } else { format!("d{d}m{d}y") };
    if s.bracket { format!("[{date}, {time}] ") } else { format!("{date}, {time} {} ", s.sep) }
}

/// Day, month, year of a header under an order (None when impossible).
fn ymd(h: &Header, order: DateOrder) -> Option<(u32, u32, u32)> {
    let [a, b, c] = h.date;
    let (y, m, d) = match order {
        DateOrder::Ymd => (a, b, c),
        DateOrder::Dmy => (c, b, a),
        DateOrder::Mdy => (c, a, b),
    };
    let year = if y.1 <= 2 { 2000 + y.0 } else { y.0 };
    let (m, d) = (m.0, d.0);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(year, m) {
        return None;
    }
    Some((year, m, d))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// ISO 8601 local time of a header, or None when the date or time is impossible.
pub fn timestamp(h: &Header, order: DateOrder) -> Option<String> {
    let (y, m, d) = ymd(h, order)?;
    let hour = match h.meridiem {
        Meridiem::None => h.hour,
        Meridiem::Am => h.hour % 12,
        Meridiem::Pm => h.hour % 12 + 12,
    };
    let mut ts = String::with_capacity(19);
    let mut push = |v: u32, width: usize, sep: Option<char>| {
        let digits = [v / 1000 % 10, v / 100 % 10, v / 10 % 10, v % 10];
        for d in &digits[4 - width..] {
            ts.push(char::from(b'0' + *d as u8));
        }
        if let Some(c) = sep {
            ts.push(c);
        }
    };
    push(y, 4, Some('-'));
    push(m, 2, Some('-'));
    push(d, 2, Some('T'));
    push(hour, 2, Some(':'));
    push(h.minute, 2, Some(':'));
    push(h.second, 2, None);
    Some(ts)
}

fn decide_order(
    of_shape: &[&Header],
    lines: &[&str],
    headers: &[Option<Header>],
    shape: Shape,
) -> (DateOrder, bool, String) {
    if shape.year_first {
        return (DateOrder::Ymd, false, "four-digit year first".into());
    }
    // Fields over 12 can only be days.
    let first_over = of_shape.iter().filter(|h| h.date[0].0 > 12).count();
    let second_over = of_shape.iter().filter(|h| h.date[1].0 > 12).count();
    if first_over > 0 && second_over == 0 {
        return (DateOrder::Dmy, false, format!("{first_over} dates with a first field over 12"));
    }
    if second_over > 0 && first_over == 0 {
        return (DateOrder::Mdy, false, format!("{second_over} dates with a second field over 12"));
    }
    // Attachment names carry the real date.
    let (mut dmy, mut mdy) = (0, 0);
    for (i, h) in headers.iter().enumerate() {
        let Some(h) = h.filter(|h| h.shape == shape) else { continue };
        if let Some(date) = locale::attachment_date(&lines[i][h.body_start..]) {
            if ymd(&h, DateOrder::Dmy) == Some(date) {
                dmy += 1;
            }
            if ymd(&h, DateOrder::Mdy) == Some(date) {
                mdy += 1;
            }
        }
    }
    if dmy != mdy {
        let (o, n) = if dmy > mdy { (DateOrder::Dmy, dmy) } else { (DateOrder::Mdy, mdy) };
        return (o, false, format!("{n} attachment names agree"));
    }
    // Chats move forward in time: the order under which dates go down less often wins.
    let backwards = |o: DateOrder| {
        let mut prev = None;
        let mut n = 0;
        for h in of_shape {
            if let Some(d) = ymd(h, o) {
                if prev.is_some_and(|p| d < p) {
                    n += 1;
                }
                prev = Some(d);
            }
        }
        n
    };
    let (bd, bm) = (backwards(DateOrder::Dmy), backwards(DateOrder::Mdy));
    if bd != bm {
        let o = if bd < bm { DateOrder::Dmy } else { DateOrder::Mdy };
        return (o, false, format!("dates go backwards {} times as d/m/y, {} as m/d/y", bd, bm));
    }
    (DateOrder::Dmy, true, "nothing tells day-first from month-first; day-first assumed".into())
}

fn finish(
    p: Pending,
    chat: &str,
    order: DateOrder,
    last_ts: &mut Option<String>,
    rep: &mut ParseReport,
    authors: &mut Vec<(String, u64)>,
) -> Message {
    let ts = timestamp(&p.header, order).unwrap_or_default();
    let (author, text) = split_author(&p.body, p.header.shape.bracket);
    let (text, edited) = locale::strip_edited(&text);
    let kind = match &author {
        None => MessageKind::System,
        Some(_) if locale::is_phrase(&text, locale::DELETED) => MessageKind::Deleted,
        Some(_) if locale::is_media(&text) => MessageKind::Media,
        Some(_) => MessageKind::Text,
    };
    let attachment = if kind == MessageKind::Media { locale::attachment(&text) } else { None };
    let mut m = Message {
        chat: chat.to_string(),
        ts,
        author,
        text,
        kind,
        edited: edited.then_some(true),
        attachment,
        fields: Default::default(),
    };
    if let Some(prev) = last_ts.as_deref()
        && m.ts.as_str() < prev
    {
        m.fields.insert("out_of_order", serde_json::Value::Bool(true));
        rep.out_of_order += 1;
    }
    *last_ts = Some(m.ts.clone());
    *rep.kinds.entry(kind.as_str()).or_default() += 1;
    if edited {
        rep.edited += 1;
    }
    if let Some(a) = &m.author {
        tally(authors, a);
    }
    let _ = p.line;
    m
}

/// Counts one message of `author`, keeping authors in order of first appearance.
pub fn tally(authors: &mut Vec<(String, u64)>, author: &str) {
    match authors.iter_mut().find(|(n, _)| n == author) {
        Some((_, c)) => *c += 1,
        None => authors.push((author.to_string(), 1)),
    }
}

/// Splits `Author: text`. System lines have no author: no `": "`, a candidate that cannot be a name
/// (quotes, too long), a known system phrase (encryption notice under the chat's name, subject changes),
/// or — on iOS — text that WhatsApp wrote itself (it starts with U+200E) and is not media or deleted.
fn split_author(body: &str, ios: bool) -> (Option<String>, String) {
    let first_line = body.lines().next().unwrap_or("");
    let colon = first_line.as_bytes().windows(2).position(|w| w == b": ");
    let Some(i) = colon else {
        return (None, body.to_string());
    };
    let raw_author = &body[..i];
    let text = &body[i + 2..];
    let author: std::borrow::Cow<'_, str> = if raw_author.chars().any(header::is_invisible) {
        raw_author.chars().filter(|c| !header::is_invisible(*c)).collect::<String>().into()
    } else {
        raw_author.into()
    };
    let author = author.trim();
    let impossible = author.is_empty()
        || author.chars().count() > 80
        || author.contains(['"', '“', '”', '«', '»', '„'])
        || locale::is_group_event(raw_author);
    if impossible {
        return (None, body.to_string());
    }
    // iOS writes its own notices under the chat's name, with U+200E before the text.
    let lrm = text.starts_with('\u{200E}');
    if ios && lrm && !locale::is_media(text) && !locale::is_phrase(text, locale::DELETED) {
        return (None, text.to_string());
    }
    (Some(author.to_string()), text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(text: &str) -> (Vec<Message>, ParseReport) {
        let lines: Vec<&str> = text.lines().collect();
        parse(&lines, "c", None)
    }

    #[test]
    fn multiline_and_dates_inside_messages() {
        let (m, r) = msgs(
            "09/02/2023, 21:05 - Ali: first line\nsecond line\n10/02/2023 was the date\n13/02/2023, 08:00 - Sara: ok",
        );
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
}
