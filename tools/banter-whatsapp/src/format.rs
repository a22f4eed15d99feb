//! `--format`: the header written out (strftime-like) for an export whose shape the inference cannot
//! decide or does not know: `%d`, `%m` (1–2 digits), `%y` (2), `%Y` (4), `%H`/`%I` (hour, 24/12-hour),
//! `%M`, `%S`, `%p` (AM/PM in any form banter reads), `%%`; a space matches one or more spaces (NBSP and
//! U+202F included); any other character must be there as written. What follows the format is the body
//! (`Author: text`). `%d.%m.%y, %H:%M - ` reads `31.12.19, 23:59 - Ana: hi`; whatstk's form of the same,
//! `%d.%m.%y, %H:%M - %name:`, is accepted too.

use crate::dates::DateOrder;
use crate::header::{Header, Meridiem, Scanner, Shape, clock_ok, normalize};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Day,
    Month,
    Year2,
    Year4,
    Hour24,
    Hour12,
    Minute,
    Second,
    AmPm,
    Space,
    Lit(char),
}

/// A compiled `--format`.
#[derive(Debug, Clone)]
pub struct Format {
    tokens: Vec<Token>,
    /// The date order the format names.
    pub order: DateOrder,
    shape: Shape,
}

impl Format {
    /// Compiles a format; the error names what is wrong with it.
    pub fn new(spec: &str) -> Result<Format, String> {
        let mut tokens = Vec::new();
        // whatstk writes its formats with the author in them (`%d.%m.%y, %H:%M - %name:`): the header ends
        // where `%name` starts.
        let spec = spec.split("%name").next().unwrap_or(spec);
        let mut chars = spec.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '%' => match chars.next() {
                    Some('d') => Token::Day,
                    Some('m') => Token::Month,
                    Some('y') => Token::Year2,
                    Some('Y') => Token::Year4,
                    Some('H') => Token::Hour24,
                    Some('I') => Token::Hour12,
                    Some('M') => Token::Minute,
                    Some('S') => Token::Second,
                    Some('p') => Token::AmPm,
                    Some('%') => Token::Lit('%'),
                    Some(o) => return Err(format!("--format: %{o} is not one of %d %m %y %Y %H %I %M %S %p %%")),
                    None => return Err("--format: a lone % at the end".into()),
                },
                ' ' => Token::Space,
                c => Token::Lit(c),
            });
        }
        let pos = |t: &[Token]| tokens.iter().position(|x| t.contains(x));
        let (d, m, y) = (pos(&[Token::Day]), pos(&[Token::Month]), pos(&[Token::Year2, Token::Year4]));
        let (Some(d), Some(m), Some(y)) = (d, m, y) else {
            return Err("--format needs %d, %m and %y or %Y".into());
        };
        if pos(&[Token::Hour24, Token::Hour12]).is_none() || pos(&[Token::Minute]).is_none() {
            return Err("--format needs %H or %I, and %M".into());
        }
        let twelve = pos(&[Token::Hour12]).is_some();
        if twelve != pos(&[Token::AmPm]).is_some() {
            return Err("--format: %I (12-hour) goes with %p, %H without it".into());
        }
        let mut by_place = [(d, 'd'), (m, 'm'), (y, 'y')];
        by_place.sort();
        let order = match by_place.map(|(_, c)| c) {
            ['d', 'm', 'y'] => DateOrder::Dmy,
            ['m', 'd', 'y'] => DateOrder::Mdy,
            ['y', 'm', 'd'] => DateOrder::Ymd,
            ['y', 'd', 'm'] => DateOrder::Ydm,
            ['m', 'y', 'd'] => DateOrder::Myd,
            _ => DateOrder::Dym,
        };
        let date_sep = tokens
            .iter()
            .skip(by_place[0].0 + 1)
            .find_map(|t| if let Token::Lit(c) = t { Some(*c) } else { None })
            .unwrap_or('/');
        let year_place = by_place.iter().position(|(_, c)| *c == 'y').unwrap_or(2) as u8;
        let shape = Shape {
            bracket: tokens.first() == Some(&Token::Lit('[')),
            date_sep,
            year_pos: if tokens.contains(&Token::Year4) { year_place } else { 3 },
            time_first: pos(&[Token::Hour24, Token::Hour12]) < Some(by_place[0].0),
            digits: 0,
            seconds: pos(&[Token::Second]).is_some(),
            twelve_hour: twelve,
            sep: tokens.iter().rev().find_map(|t| if let Token::Lit(c) = t { Some(*c) } else { None }).unwrap_or(' '),
        };
        Ok(Format { tokens, order, shape })
    }

    /// The header at the start of `line`, read by this format.
    pub fn scan(&self, line: &str) -> Option<Header> {
        let n = normalize(line);
        let mut s = Scanner::new(&n.chars[..n.len]);
        let (mut d, mut m, mut y) = ((0, 0), (0, 0), (0, 0));
        let (mut hour, mut minute, mut second, mut meridiem) = (0, 0, 0, Meridiem::None);
        for t in &self.tokens {
            match t {
                Token::Day => d = s.number_of(1, 2)?,
                Token::Month => m = s.number_of(1, 2)?,
                Token::Year2 => y = s.number_of(2, 2)?,
                Token::Year4 => y = s.number_of(4, 4)?,
                Token::Hour24 | Token::Hour12 => hour = s.number_of(1, 2)?.0,
                Token::Minute => minute = s.number_of(2, 2)?.0,
                Token::Second => second = s.number_of(2, 2)?.0,
                Token::AmPm => meridiem = s.meridiem()?,
                Token::Space => {
                    if s.spaces() == 0 {
                        return None;
                    }
                }
                Token::Lit(c) => {
                    if !s.eat(*c) {
                        return None;
                    }
                }
            }
        }
        // The fields in the order the scanner's headers keep them (as written), for `parse::ymd`.
        let date = match self.order {
            DateOrder::Dmy => [d, m, y],
            DateOrder::Mdy => [m, d, y],
            DateOrder::Ymd => [y, m, d],
            DateOrder::Ydm => [y, d, m],
            DateOrder::Myd => [m, y, d],
            DateOrder::Dym => [d, y, m],
        };
        let time_ok = clock_ok(self.shape.twelve_hour, hour, minute, second);
        Some(Header {
            shape: self.shape,
            date,
            hour,
            minute,
            second,
            meridiem,
            body_start: n.offs[s.pos().min(n.len)],
            time_ok,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_reads_what_it_describes_and_nothing_else() {
        let f = Format::new("%d.%m.%y, %H:%M - ").unwrap();
        assert_eq!(f.order, DateOrder::Dmy);
        let line = "31.12.19, 23:59 - Ana: hi";
        let h = f.scan(line).unwrap();
        assert_eq!((h.date, h.hour, h.minute, &line[h.body_start..]), ([(31, 2), (12, 2), (19, 2)], 23, 59, "Ana: hi"));
        assert!(f.scan("31/12/19, 23:59 - Ana: hi").is_none());
        let f = Format::new("[%Y-%m-%d %I:%M:%S %p] ").unwrap();
        let h = f.scan("[2019-12-31 11:59:01\u{202F}PM] Ana: hi").unwrap();
        assert_eq!((f.order, h.hour, h.second, h.meridiem), (DateOrder::Ymd, 11, 1, Meridiem::Pm));
        let f = Format::new("%y-%m-%d, %H:%M - %name:").unwrap();
        assert_eq!(f.order, DateOrder::Ymd);
        assert_eq!(f.scan("19-09-05, 21:10 - Ana: hi").map(|h| h.date), Some([(19, 2), (9, 2), (5, 2)]));
        for bad in ["%d/%m %H:%M", "%d/%m/%y", "%d/%m/%y %I:%M", "%d/%m/%y %H:%M %q", "%"] {
            assert!(Format::new(bad).is_err(), "{bad}");
        }
    }
}
