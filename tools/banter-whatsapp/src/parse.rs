//! From lines to messages: decide the file's header shape and date order, assemble multi-line messages,
//! split authors from text, and classify kinds (text, media, deleted, system).

use std::collections::HashMap;

use banter_core::records::{Message, MessageKind};
use serde::Serialize;

use crate::dates::decide_order;
pub use crate::dates::{DateOrder, timestamp};
use crate::format::Format;
use crate::header::{self, Header, Shape};
use crate::locale;

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
    /// Header-like lines of another shape than the file's that did not fit in time between the messages
    /// around them (kept as message text), with line numbers.
    pub headers_not_taken: Vec<u64>,
    /// Every header shape seen, with its line count, the file's own first.
    pub shapes: Vec<(String, u64)>,
    /// Messages whose time is earlier than the previous message's (flagged, not reordered).
    pub out_of_order: u64,
    /// Authors, in order of first appearance, with message counts.
    pub authors: Vec<(String, u64)>,
}

/// The date order of the file's own shape, and of every other shape seen.
struct Orders {
    main: (Shape, DateOrder),
    other: HashMap<Shape, DateOrder>,
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
    emit: impl FnMut(Message) -> Result<(), E>,
) -> Result<ParseReport, E> {
    parse_each_with(lines, chat, forced, None, emit)
}

/// [`parse_each`], with headers read by a `--format` when one is given (its date order then applies
/// unless `forced` says otherwise).
pub fn parse_each_with<E>(
    lines: &[&str],
    chat: &str,
    forced: Option<DateOrder>,
    format: Option<&Format>,
    mut emit: impl FnMut(Message) -> Result<(), E>,
) -> Result<ParseReport, E> {
    let mut rep = ParseReport { lines: lines.len() as u64, ..Default::default() };
    // Scanning headers is the bulk of the work and independent per line: in parallel.
    let headers: Vec<Option<Header>> = {
        use rayon::prelude::*;
        match format {
            Some(f) => lines.par_iter().with_min_len(4096).map(|l| f.scan(l)).collect(),
            None => lines.par_iter().with_min_len(4096).map(|l| header::scan(l)).collect(),
        }
    };
    let forced = forced.or(format.map(|f| f.order));

    let Some((orders, n_shapes)) = shapes_and_orders(lines, &headers, forced, format, &mut rep) else {
        rep.preamble_lines = (1..=lines.len() as u64).collect();
        return Ok(rep);
    };
    let (shape, order) = orders.main;
    let ts_of = |h: &Header| {
        let o = if h.shape == shape { Some(order) } else { orders.other.get(&h.shape).copied() };
        if h.time_ok { o.and_then(|o| timestamp(h, o)) } else { None }
    };
    // For each line, the index of the next header of the file's own shape (a bound in time for lines of
    // other shapes); only needed when the file has a second shape.
    let next_main = next_of_shape(&headers, shape, n_shapes > 1);

    let mut count = 0u64;
    // The last line taken as a message start (usize::MAX: none yet).
    let mut started = usize::MAX;
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
            Some(h) => match ts_of(h) {
                None => {
                    rep.invalid_headers.push(n);
                    false
                }
                // Another shape (merged exports, a marker the phone wrote differently once): taken when it
                // fits in time between the messages around it; else a quoted chat, kept as text and reported.
                Some(t) => {
                    let at = |j: usize| headers.get(j).copied().flatten().and_then(|h| ts_of(&h));
                    let after_last = at(started).is_none_or(|l| l <= t);
                    let before_next = at(next_main[i]).is_none_or(|nx| t <= nx);
                    if after_last && before_next {
                        true
                    } else {
                        rep.headers_not_taken.push(n);
                        false
                    }
                }
            },
            None => false,
        };
        if starts {
            if let Some(p) = pending.take() {
                emit(finish(p, count, chat, &orders, &mut last_ts, &mut rep, &mut author_counts))?;
                count += 1;
            }
            let h = headers[i].expect("checked above");
            started = i;
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
        emit(finish(p, count, chat, &orders, &mut last_ts, &mut rep, &mut author_counts))?;
        count += 1;
    }
    rep.messages = count;
    rep.authors = author_counts;
    Ok(rep)
}

/// The file's shape (the most common among header-like lines) and the date order of each shape: the file's
/// from all its headers; another shape's from its own, or the file's when its own dates cannot tell and the
/// file's order fits them. Returns the orders and the number of shapes; `None` when no line is a header.
fn shapes_and_orders(
    lines: &[&str],
    headers: &[Option<Header>],
    forced: Option<DateOrder>,
    format: Option<&Format>,
    rep: &mut ParseReport,
) -> Option<(Orders, usize)> {
    // The file's shape: the most common among header-like lines.
    let mut votes: HashMap<Shape, usize> = HashMap::new();
    for h in headers.iter().flatten().filter(|h| h.time_ok) {
        *votes.entry(h.shape).or_default() += 1;
    }
    let mut ranked: Vec<(Shape, usize)> = votes.into_iter().collect();
    ranked.sort_by_key(|(s, n)| (std::cmp::Reverse(*n), s.bracket, describe(s)));
    let &(shape, _) = ranked.first()?;
    rep.shape = Some(describe(&shape));
    rep.shapes = ranked.iter().map(|(s, n)| (describe(s), *n as u64)).collect();
    // The date order of each shape: the file's from all its headers; another shape's from its own, or the
    // file's when its own dates cannot tell and the file's order fits them.
    let mut others: HashMap<Shape, DateOrder> = HashMap::new();
    let (order, ambiguous, evidence) = match forced {
        Some(o) => (o, false, if format.is_some() { "--format" } else { "--date-order" }.to_string()),
        None => {
            let of_shape: Vec<&Header> = headers.iter().flatten().filter(|h| h.shape == shape && h.time_ok).collect();
            decide_order(&of_shape, lines, headers, shape)
        }
    };
    for (other, _) in ranked.iter().skip(1) {
        let of: Vec<&Header> = headers.iter().flatten().filter(|h| h.shape == *other && h.time_ok).collect();
        let (o, amb, _) = match forced {
            Some(o) => (o, false, String::new()),
            None => decide_order(&of, lines, headers, *other),
        };
        let o = if amb && DateOrder::candidates(other).contains(&order) { order } else { o };
        others.insert(*other, o);
    }
    rep.date_order = Some(order);
    rep.date_order_ambiguous = ambiguous;
    rep.date_order_evidence = evidence;
    Some((Orders { main: (shape, order), other: others }, ranked.len()))
}

/// For each line, the index of the next header of `shape` (usize::MAX when none follows); empty when not
/// `needed`.
fn next_of_shape(headers: &[Option<Header>], shape: Shape, needed: bool) -> Vec<usize> {
    let mut next = vec![usize::MAX; if needed { headers.len() } else { 0 }];
    let mut upcoming = usize::MAX;
    for i in (0..next.len()).rev() {
        next[i] = upcoming;
        if headers[i].as_ref().is_some_and(|h| h.shape == shape && h.time_ok) {
            upcoming = i;
        }
    }
    next
}

fn describe(s: &Shape) -> String {
    let d = s.date_sep;
    let time = format!("h:mm{}{}", if s.seconds { ":ss" } else { "" }, if s.twelve_hour { " AM/PM" } else { "" });
    let f = ["a", "b", "c"].map(|x| x.to_string());
    let mut f = f;
    if s.year_pos < 3 {
        f[s.year_pos as usize] = "yyyy".into();
    }
    let date = format!("{}{d}{}{d}{}", f[0], f[1], f[2]);
    let (first, second) = if s.time_first { (time, date) } else { (date, time) };
    let digits = match s.digits {
        1 => " (Persian digits)",
        2 => " (Arabic-Indic digits)",
        _ => "",
    };
    let end = match s.sep {
        ']' => "] ".to_string(),
        ' ' => " ".to_string(),
        c => format!(" {c} "),
    };
    format!("{}{first}, {second}{end}{digits}", if s.bracket { "[" } else { "" })
}

#[allow(clippy::too_many_arguments)]
fn finish(
    p: Pending,
    index: u64,
    chat: &str,
    orders: &Orders,
    last_ts: &mut Option<String>,
    rep: &mut ParseReport,
    authors: &mut Vec<(String, u64)>,
) -> Message {
    // The file's own shape (almost every message) without a hash lookup.
    let order = match orders.main {
        (shape, order) if shape == p.header.shape => Some(order),
        _ => orders.other.get(&p.header.shape).copied(),
    };
    let ts = order.and_then(|o| timestamp(&p.header, o)).unwrap_or_default();
    let (author, text) = split_author(&p.body, p.header.shape.bracket);
    // The encryption notice is WhatsApp's, even when the export names the group as its author: at the top
    // of the chat (where WhatsApp writes it) or under the chat's own name.
    let notice = author.as_deref().is_some_and(|a| index < 3 || a == chat) && locale::is_notice(&text);
    let author = if notice { None } else { author };
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
mod tests;
