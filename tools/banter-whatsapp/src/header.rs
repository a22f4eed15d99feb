//! Recognising message headers: `DATE, TIME - ` (Android) and `[DATE, TIME] ` (iOS), in every locale.
//!
//! A hand-written scanner rather than a regex per locale: the line's first characters are normalised
//! (Persian/Arabic digits → ASCII, the Arabic comma → `,`, NBSP/U+202F → space, invisible marks dropped) and
//! scanned once; the result records the header's *shape* so that the whole file can agree on one.

/// Invisible marks that exports put around header fields (stripped there, never from message text).
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{FEFF}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// How a 12-hour clock marks the half of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Meridiem {
    /// 24-hour clock.
    None,
    /// Before noon.
    Am,
    /// After noon.
    Pm,
}

/// The parts of a header that must agree across a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// iOS `[…]`.
    pub bracket: bool,
    /// `/`, `.`, `-` or `,`.
    pub date_sep: char,
    /// Where the four-digit year stands (0, 1 or 2); 3 when every field has one or two digits (the year's
    /// place is then decided from the whole file).
    pub year_pos: u8,
    /// The time comes before the date (`21:05, 09/02/2023 - …`).
    pub time_first: bool,
    /// Digits as written: 0 Latin, 1 Persian (۰-۹), 2 Arabic-Indic (٠-٩).
    pub digits: u8,
    /// Seconds in the time.
    pub seconds: bool,
    /// 12-hour clock.
    pub twelve_hour: bool,
    /// What ends the header: `-` (` - `), `:` (`: `), `;` (`; `), `]` (iOS), or ` ` (nothing but a space
    /// before `Author: text`).
    pub sep: char,
}

/// A recognised header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Its shape.
    pub shape: Shape,
    /// The three date fields as written, with their digit counts.
    pub date: [(u32, u8); 3],
    /// Hour as written (1–12 for a 12-hour clock).
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second (0 when absent).
    pub second: u32,
    /// AM/PM.
    pub meridiem: Meridiem,
    /// Byte offset in the original line where the body (`Author: text`) starts.
    pub body_start: usize,
    /// False for a header whose clock cannot be (`25:61`, `13:05 PM`): it is reported as an invalid
    /// header, not taken as a message, and never silently folded into the previous one.
    pub time_ok: bool,
}

const MAX_HEADER_CHARS: usize = 64;

/// The first characters of a line with invisible marks dropped, digits of any script as ASCII, and the
/// byte offset in the line of each character kept.
pub(crate) struct Normalized {
    pub(crate) chars: [char; MAX_HEADER_CHARS],
    pub(crate) offs: [usize; MAX_HEADER_CHARS + 1],
    pub(crate) len: usize,
    /// The digits' script: 0 ASCII, 1 Persian, 2 Arabic-Indic (the first digit seen).
    digits: Option<u8>,
}

pub(crate) fn normalize(line: &str) -> Normalized {
    let mut n = Normalized { chars: ['\0'; MAX_HEADER_CHARS], offs: [0; MAX_HEADER_CHARS + 1], len: 0, digits: None };
    for (i, c) in line.char_indices() {
        if n.len >= MAX_HEADER_CHARS {
            break;
        }
        if is_invisible(c) {
            continue;
        }
        let ch = match c {
            '0'..='9' => {
                n.digits.get_or_insert(0);
                c
            }
            '\u{06F0}'..='\u{06F9}' => {
                n.digits.get_or_insert(1);
                char::from(b'0' + (c as u32 - 0x06F0) as u8)
            }
            '\u{0660}'..='\u{0669}' => {
                n.digits.get_or_insert(2);
                char::from(b'0' + (c as u32 - 0x0660) as u8)
            }
            '\u{060C}' => ',',
            '\u{00A0}' | '\u{202F}' | '\u{2009}' | '\u{2007}' => ' ',
            c => c,
        };
        n.chars[n.len] = ch;
        n.offs[n.len] = i;
        n.len += 1;
    }
    let len = n.len;
    n.offs[len] = if len < MAX_HEADER_CHARS {
        line.len()
    } else {
        n.offs[len - 1] + line[n.offs[len - 1]..].chars().next().map_or(0, char::len_utf8)
    };
    n
}

/// Scans the start of a line for a header.
pub fn scan(line: &str) -> Option<Header> {
    // Quick reject: a header starts with a digit or '[' (after invisible marks).
    let first = line.chars().find(|c| !is_invisible(*c))?;
    if !(first == '[' || first.is_numeric()) {
        return None;
    }
    let n = normalize(line);
    let offs = &n.offs[..=n.len];
    let c = &n.chars[..n.len];
    let (mut s, bracket, date, date_sep, time, meridiem, time_first) =
        date_then_time(c).or_else(|| time_then_date(c))?;
    let (hour, minute, second, seconds) = time;
    let sep = s.separator(bracket)?;
    let twelve_hour = meridiem != Meridiem::None;
    let time_ok = clock_ok(twelve_hour, hour, minute, second);
    let body_start = offs[s.p.min(offs.len() - 1)];
    // With no separator after the time, only `Author: text` makes it a header.
    if sep == ' ' && !line[body_start..].split('\n').next().is_some_and(|l| l.contains(": ")) {
        return None;
    }
    let year_pos = date.iter().position(|f| f.1 == 4).map_or(3, |i| i as u8);
    Some(Header {
        shape: Shape {
            bracket,
            date_sep,
            year_pos,
            time_first,
            digits: n.digits.unwrap_or(0),
            seconds,
            twelve_hour,
            sep,
        },
        date,
        hour,
        minute,
        second,
        meridiem,
        body_start,
        time_ok,
    })
}

/// Whether a clock reading can be: a 12-hour clock may write midnight's hour as 0 (`00:08 a. m.`).
pub(crate) fn clock_ok(twelve_hour: bool, hour: u32, minute: u32, second: u32) -> bool {
    !(twelve_hour && hour > 12 || !twelve_hour && hour > 23 || minute > 59 || second > 59)
}

type Fields = [(u32, u8); 3];
type Clock = (u32, u32, u32, bool);
type Scanned<'a> = (Scanner<'a>, bool, Fields, char, Clock, Meridiem, bool);

/// `[DATE, TIME` or `DATE, TIME`: the common order.
fn date_then_time(c: &[char]) -> Option<Scanned<'_>> {
    let mut s = Scanner { c, p: 0 };
    let bracket = s.eat('[');
    s.spaces();
    let (date, date_sep) = s.date()?;
    s.eat('.');
    // Between date and time: a comma, spaces, ` - `, or a short word (à, klo, um, kl., om, alle).
    let had_comma = s.eat(',');
    let sp = s.spaces();
    if !had_comma && sp == 0 {
        return None;
    }
    if !had_comma && s.peek() == Some('-') && s.c.get(s.p + 1) == Some(&' ') {
        s.p += 1;
        s.spaces();
    }
    s.short_word();
    let cjk = s.cjk_marker();
    s.spaces();
    let time = s.time()?;
    let meridiem = match cjk {
        Some(m) => m,
        None => s.maybe_meridiem(),
    };
    Some((s, bracket, date, date_sep, time, meridiem, false))
}

/// `[TIME, DATE` or `TIME, DATE`: some exports and converters write the time first.
fn time_then_date(c: &[char]) -> Option<Scanned<'_>> {
    let mut s = Scanner { c, p: 0 };
    let bracket = s.eat('[');
    s.spaces();
    let time = s.time()?;
    let meridiem = s.maybe_meridiem();
    let had_comma = s.eat(',');
    if s.spaces() == 0 && !had_comma {
        return None;
    }
    let (date, date_sep) = s.date()?;
    s.eat('.');
    Some((s, bracket, date, date_sep, time, meridiem, true))
}

pub(crate) struct Scanner<'a> {
    c: &'a [char],
    p: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of normalised characters.
    pub(crate) fn new(c: &'a [char]) -> Self {
        Scanner { c, p: 0 }
    }

    /// Characters read so far.
    pub(crate) fn pos(&self) -> usize {
        self.p
    }

    /// A number of `min..=max` digits.
    pub(crate) fn number_of(&mut self, min: u8, max: u8) -> Option<(u32, u8)> {
        let save = self.p;
        match self.number(max as usize) {
            Some(v) if v.1 >= min => Some(v),
            _ => {
                self.p = save;
                None
            }
        }
    }

    /// What ends the header: `]` after a bracketed one, else ` - `, `: ` or `; ` (the body needs its space:
    /// "12:00 -Ali: hi" is not a header).
    fn separator(&mut self, bracket: bool) -> Option<char> {
        let sp = self.spaces();
        if bracket {
            if !self.eat(']') {
                return None;
            }
            self.spaces();
            return Some(']');
        }
        let sep = match self.peek()? {
            '-' | '–' => '-',
            ':' => ':',
            ';' => ';',
            // No separator: the author follows the time after a space (checked by the caller).
            c if sp > 0 && !c.is_ascii_digit() => return Some(' '),
            _ => return None,
        };
        self.p += 1;
        self.eat(' ').then_some(sep)
    }

    fn peek(&self) -> Option<char> {
        self.c.get(self.p).copied()
    }

    pub(crate) fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.p += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn spaces(&mut self) -> usize {
        let start = self.p;
        while self.peek() == Some(' ') {
            self.p += 1;
        }
        self.p - start
    }

    fn number(&mut self, max_digits: usize) -> Option<(u32, u8)> {
        let start = self.p;
        let mut v = 0u32;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            if self.p - start >= max_digits {
                return None;
            }
            v = v * 10 + d;
            self.p += 1;
        }
        let n = self.p - start;
        (n > 0).then_some((v, n as u8))
    }

    fn date(&mut self) -> Option<([(u32, u8); 3], char)> {
        let a = self.number(4)?;
        let sep = self.peek()?;
        if !matches!(sep, '/' | '.' | '-' | ',') {
            return None;
        }
        self.p += 1;
        self.spaces();
        let b = self.number(4)?;
        if !self.eat(sep) {
            return None;
        }
        self.spaces();
        let c = self.number(4)?;
        // One four-digit year anywhere and two fields of one or two digits, or three fields of one or two
        // digits (a two-digit year, first or last) with the last of two digits.
        let fours = [a, b, c].iter().filter(|f| f.1 == 4).count();
        let short = [a, b, c].iter().all(|f| f.1 <= 2 || f.1 == 4);
        let ok = short && (fours == 1 || fours == 0 && c.1 == 2);
        ok.then_some(([a, b, c], sep))
    }

    fn short_word(&mut self) {
        let save = self.p;
        let start = self.p;
        while self.peek().is_some_and(|c| c.is_alphabetic() && !is_cjk_marker_start(c)) {
            self.p += 1;
        }
        let len = self.p - start;
        self.eat('.');
        if len == 0 || len > 4 || self.spaces() == 0 {
            self.p = save;
        }
    }

    fn cjk_marker(&mut self) -> Option<Meridiem> {
        let m = match (self.c.get(self.p)?, self.c.get(self.p + 1)?) {
            ('上', '午') | ('午', '前') | ('오', '전') => Meridiem::Am,
            ('下', '午') | ('午', '後') | ('오', '후') => Meridiem::Pm,
            _ => return None,
        };
        self.p += 2;
        Some(m)
    }

    fn time(&mut self) -> Option<(u32, u32, u32, bool)> {
        let (h, _) = self.number(2)?;
        let sep = self.peek()?;
        if sep != ':' && sep != '.' {
            return None;
        }
        self.p += 1;
        let (m, md) = self.number(2)?;
        if md != 2 {
            return None;
        }
        let save = self.p;
        if self.eat(sep) {
            if let Some((sec, 2)) = self.number(2) {
                return Some((h, m, sec, true));
            }
            self.p = save;
        }
        Some((h, m, 0, false))
    }

    /// An AM/PM marker after optional spaces, or none (the position is kept then).
    fn maybe_meridiem(&mut self) -> Meridiem {
        let save = self.p;
        self.spaces();
        match self.meridiem() {
            Some(m) => m,
            None => {
                self.p = save;
                Meridiem::None
            }
        }
    }

    /// AM/PM in the forms exports use: AM, am, a.m., a. m., ص/م (Arabic), ق.ظ/ب.ظ (Persian), vorm./nachm.
    pub(crate) fn meridiem(&mut self) -> Option<Meridiem> {
        if !matches!(self.peek()?, 'a' | 'p' | 'A' | 'P' | 'ق' | 'ب' | 'ص' | 'م' | 'v' | 'n' | 'V' | 'N') {
            return None;
        }
        let rest: String = self.c[self.p..].iter().take(8).collect::<String>().to_lowercase();
        let forms: [(&str, Meridiem); 14] = [
            ("a. m.", Meridiem::Am),
            ("p. m.", Meridiem::Pm),
            ("a.m.", Meridiem::Am),
            ("p.m.", Meridiem::Pm),
            ("am", Meridiem::Am),
            ("pm", Meridiem::Pm),
            ("ق.ظ", Meridiem::Am),
            ("ب.ظ", Meridiem::Pm),
            ("ص", Meridiem::Am),
            ("م", Meridiem::Pm),
            ("vorm.", Meridiem::Am),
            ("nachm.", Meridiem::Pm),
            ("ap.", Meridiem::Am),
            ("ip.", Meridiem::Pm),
        ];
        for (f, m) in forms {
            if rest.starts_with(f) {
                let n = f.chars().count();
                // The marker must end there (not "am" of "amigo").
                let next = self.c.get(self.p + n).copied();
                if next.is_some_and(|c| c.is_alphanumeric()) {
                    continue;
                }
                self.p += n;
                return Some(m);
            }
        }
        None
    }
}

fn is_cjk_marker_start(c: char) -> bool {
    matches!(c, '上' | '下' | '午' | '오')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(line: &str) -> &str {
        &line[scan(line).unwrap().body_start..]
    }

    #[test]
    fn android_and_ios_basics() {
        let h = scan("09/02/2023, 21:05 - Ali: hi").unwrap();
        assert_eq!(h.date, [(9, 2), (2, 2), (2023, 4)]);
        assert_eq!((h.hour, h.minute, h.shape.sep, h.shape.bracket), (21, 5, '-', false));
        assert_eq!(body("09/02/2023, 21:05 - Ali: hi"), "Ali: hi");
        let line = "[9/2/23, 9:05:11 PM] Ali: hi";
        let h = scan(line).unwrap();
        assert_eq!((h.hour, h.second, h.meridiem, h.shape.seconds), (9, 11, Meridiem::Pm, true));
        assert_eq!(body(line), "Ali: hi");
    }

    #[test]
    fn locale_variants() {
        for (line, want_body) in [
            ("9. 2. 2023. 21:05 - Ali: hi", "Ali: hi"), // Hungarian / Croatian trailing dots
            ("09.02.23, 21:05 - Ali: hi", "Ali: hi"),   // German
            ("09/02/2023 à 21:05 - Ali: hi", "Ali: hi"), // French
            ("9.2.2023 klo 21.05 - Ali: hi", "Ali: hi"), // Finnish
            ("2023-02-09, 21:05 - Ali: hi", "Ali: hi"), // ISO
            ("9/2/23, 9:05\u{202F}PM - Ali: hi", "Ali: hi"), // NNBSP before PM
            ("9/2/23, 9:05 p. m. - Ali: hi", "Ali: hi"), // Spanish
            ("۹/۲/۲۳، ۹:۰۵ ب.ظ - علی: سلام", "علی: سلام"), // Persian digits, Arabic comma
            ("٩/٢/٢٣، ٩:٠٥ م - علي: مرحبا", "علي: مرحبا"), // Arabic
            ("2023/2/9 下午9:05 - 小明: 你好", "小明: 你好"), // Chinese
            ("2023. 2. 9. 오후 9:05 - 민수: 안녕", "민수: 안녕"), // Korean
            ("\u{200E}[09/02/2023, 21:05:11] Ali: hi", "Ali: hi"), // iOS with LRM
            ("9/2/23 21:05: Ali: hi", "Ali: hi"),       // old ": " separator
            ("9/2/23, 21:05; Ali: hi", "Ali: hi"),
        ] {
            assert!(scan(line).is_some(), "{line}");
            assert_eq!(body(line), want_body, "{line}");
        }
        let h = scan("2023. 2. 9. 오후 9:05 - 민수: 안녕").unwrap();
        assert_eq!((h.meridiem, h.date[0]), (Meridiem::Pm, (2023, 4)));
        let h = scan("۹/۲/۲۳، ۹:۰۵ ب.ظ - علی: سلام").unwrap();
        assert_eq!(h.meridiem, Meridiem::Pm);
    }

    #[test]
    fn not_headers() {
        for line in [
            "hello 09/02/2023, 21:05 - x",
            "09/02/2023 was a good day",
            "21:05 - Ali: hi",
            "[9/2/23, 21:05 Ali: hi",
            "1.5 million",
            "",
        ] {
            assert!(scan(line).is_none(), "{line}");
        }
        // Header-shaped with an impossible clock: recognised, and marked so.
        for line in ["9/2/23, 25:05 - Ali: hi", "9/2/23, 13:05 PM - Ali: hi", "[9/2/23, 21:61] Ali: hi"] {
            assert!(scan(line).is_some_and(|h| !h.time_ok), "{line}");
        }
    }
}
