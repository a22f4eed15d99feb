//! Dates in WhatsApp headers: the day/month/year order a file uses (decided from what its dates allow and
//! how they move), and timestamps under that order.

use serde::Serialize;

use crate::header::{Header, Meridiem, Shape};
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
    /// Year, day, month.
    Ydm,
    /// Month, year, day.
    Myd,
    /// Day, year, month.
    Dym,
}

impl DateOrder {
    /// The orders a shape's dates can have, most common first: the four-digit year's place fixes the year,
    /// and two-digit years may stand first or last.
    pub(crate) fn candidates(shape: &Shape) -> &'static [DateOrder] {
        match shape.year_pos {
            0 => &[DateOrder::Ymd, DateOrder::Ydm],
            1 => &[DateOrder::Myd, DateOrder::Dym],
            2 => &[DateOrder::Dmy, DateOrder::Mdy],
            // Two-digit years: first or last, the day before or after the month (`%y-%d-%m` exists).
            _ => &[DateOrder::Dmy, DateOrder::Mdy, DateOrder::Ymd, DateOrder::Ydm],
        }
    }

    fn name(self) -> &'static str {
        match self {
            DateOrder::Dmy => "d/m/y",
            DateOrder::Mdy => "m/d/y",
            DateOrder::Ymd => "y/m/d",
            DateOrder::Ydm => "y/d/m",
            DateOrder::Myd => "m/y/d",
            DateOrder::Dym => "d/y/m",
        }
    }
}

/// Day, month, year of a header under an order (None when impossible).
fn ymd(h: &Header, order: DateOrder) -> Option<(u32, u32, u32)> {
    let [a, b, c] = h.date;
    let (y, m, d) = match order {
        DateOrder::Ymd => (a, b, c),
        DateOrder::Ydm => (a, c, b),
        DateOrder::Dmy => (c, b, a),
        DateOrder::Mdy => (c, a, b),
        DateOrder::Myd => (b, a, c),
        DateOrder::Dym => (b, c, a),
    };
    if y.1 != 4 && y.1 != 2 {
        return None;
    }
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

/// Days since 0000-03-01 (for distances between dates).
fn day_number((y, m, d): (u32, u32, u32)) -> i64 {
    let (y, m) = if m <= 2 { (y as i64 - 1, m as i64 + 9) } else { (y as i64, m as i64 - 3) };
    365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + d as i64 - 1
}

/// The date order of a shape's headers, whether nothing decided it, and why. Only the orders under which
/// every date exists (from 2009, when WhatsApp began) are considered (a field over 12 cannot be a month, over 31 not a day); then the
/// dates in attachment names; then movement: a chat's consecutive messages are close in time, so the
/// order under which the dates move the fewest days in total (back and forth) is the real one — it tells
/// `19-09-05, 19-09-06` (y-m-d, a day apart) from the same read as d-m-y (a year apart), and m/d/y from
/// d/m/y when every field is under 13.
pub(crate) fn decide_order(
    of_shape: &[&Header],
    lines: &[&str],
    headers: &[Option<Header>],
    shape: Shape,
) -> (DateOrder, bool, String) {
    let cands = DateOrder::candidates(&shape);
    // A date counts when it exists and is not before WhatsApp (2009): `19-09-05` read as d-m-y would be
    // 2005. (Files dated before then, which no phone wrote, fall back to existence alone.)
    let plausible = of_shape.iter().any(|h| cands.iter().any(|o| ymd(h, *o).is_some_and(|(y, _, _)| y >= 2009)));
    let valid =
        |o: DateOrder| of_shape.iter().filter(|h| ymd(h, o).is_some_and(|(y, _, _)| !plausible || y >= 2009)).count();
    let counts: Vec<usize> = cands.iter().map(|o| valid(*o)).collect();
    let best_valid = counts.iter().copied().max().unwrap_or(0);
    let fits: Vec<DateOrder> = cands.iter().zip(&counts).filter(|(_, c)| **c == best_valid).map(|(o, _)| *o).collect();
    if fits.len() == 1 {
        let o = fits[0];
        let why = if best_valid == of_shape.len() {
            format!("only {} gives every date", o.name())
        } else {
            format!("{} gives the most dates ({best_valid} of {})", o.name(), of_shape.len())
        };
        return (o, false, why);
    }
    // Attachment names carry the real date.
    let mut agree = vec![0usize; fits.len()];
    for (i, h) in headers.iter().enumerate() {
        let Some(h) = h.filter(|h| h.shape == shape) else { continue };
        if let Some(date) = locale::attachment_date(&lines[i][h.body_start..]) {
            for (k, o) in fits.iter().enumerate() {
                if ymd(&h, *o) == Some(date) {
                    agree[k] += 1;
                }
            }
        }
    }
    let top = agree.iter().copied().max().unwrap_or(0);
    if top > 0 && agree.iter().filter(|a| **a == top).count() == 1 {
        let k = agree.iter().position(|a| *a == top).unwrap_or(0);
        return (fits[k], false, format!("{top} attachment names agree with {}", fits[k].name()));
    }
    let movement = |o: DateOrder| {
        let mut prev: Option<i64> = None;
        let mut total = 0i64;
        for h in of_shape {
            if let Some(d) = ymd(h, o) {
                let n = day_number(d);
                if let Some(p) = prev {
                    total += (n - p).abs();
                }
                prev = Some(n);
            }
        }
        total
    };
    let mut moves: Vec<(i64, DateOrder)> = fits.iter().map(|o| (movement(*o), *o)).collect();
    moves.sort_by_key(|(m, _)| *m);
    if moves.len() > 1 && moves[0].0 < moves[1].0 {
        let said: Vec<String> = moves.iter().map(|(m, o)| format!("{m} as {}", o.name())).collect();
        return (
            moves[0].1,
            false,
            format!("dates move the fewest days as {} ({})", moves[0].1.name(), said.join(", ")),
        );
    }
    let o = fits[0];
    (o, true, format!("nothing tells the date order; {} assumed", o.name()))
}
