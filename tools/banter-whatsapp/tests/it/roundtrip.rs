//! Property tests: random messages written in every header shape parse back to themselves.

use banter_whatsapp::parse::{DateOrder, parse};

/// A tiny deterministic PRNG (tests must not depend on a crate's stream).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const AUTHORS: &[&str] =
    &["Ali", "Sara Ahmadi", "~\u{202F}Reza", "+98 912 345 6789", "Mina - Work", "Dad 👨", "علی", "小明"];
const TEXTS: &[&str] = &[
    "hi",
    "see you at 5: ok?",
    "سلام، می‌رم خونه",
    "line one\nline two",
    "ratio 3:2 is fine",
    "👍",
    "note:\n12/12/2012, 12:12 - looks like a header but is not",
    "a\u{200D}b zero-width joiner kept",
];

fn digits(s: &str, script: u8) -> String {
    s.chars()
        .map(|c| match (c.to_digit(10), script) {
            (Some(d), 1) => char::from_u32(0x06F0 + d).unwrap(),
            (Some(d), 2) => char::from_u32(0x0660 + d).unwrap(),
            _ => c,
        })
        .collect()
}

#[test]
fn random_exports_in_every_shape_round_trip() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..300 {
        let bracket = rng.below(2) == 0;
        let order = *rng.pick(&[
            DateOrder::Dmy,
            DateOrder::Mdy,
            DateOrder::Ymd,
            DateOrder::Ydm,
            DateOrder::Myd,
            DateOrder::Dym,
        ]);
        let sep = *rng.pick(&['/', '.', '-', ',']);
        let twelve = rng.below(2) == 0;
        let seconds = rng.below(2) == 0;
        // Two-digit years stand first or last (`19-09-05` is y-m-d); the rarer orders write four digits.
        let four_digit_year = rng.below(2) == 0 || !matches!(order, DateOrder::Dmy | DateOrder::Mdy | DateOrder::Ymd);
        let script = if bracket { 0 } else { rng.below(3) as u8 };
        let ampm: &[(&str, &str)] =
            &[("AM", "PM"), ("am", "pm"), ("a.m.", "p.m."), ("a. m.", "p. m."), ("ق.ظ", "ب.ظ"), ("ص", "م")];
        let (am, pm) = *rng.pick(ampm);
        let space = *rng.pick(&[" ", "\u{202F}", "\u{00A0}"]);
        let after = *rng.pick(&[" - ", ": ", "; "]);
        let mut text = String::new();
        let mut want = Vec::new();
        let (mut y, mut mo, mut d, mut h, mut mi) =
            (2021 + rng.below(4) as u32, 1 + rng.below(12) as u32, 13 + rng.below(15) as u32, 0u32, 0u32);
        for k in 0..(3 + rng.below(8)) {
            mi += 1 + rng.below(300) as u32;
            // A two-digit year first reads as a valid day-first date too; the days moving between
            // messages tell them apart (a chat of one day cannot say, and --date-order is for that).
            if k == 1 && order == DateOrder::Ymd && !four_digit_year {
                d += 1;
            }
            h += mi / 60;
            mi %= 60;
            d += h / 24;
            h %= 24;
            if d > 28 {
                d = 13;
                mo += 1;
                if mo > 12 {
                    mo = 1;
                    y += 1;
                }
            }
            let s = rng.below(60) as u32;
            let yy = if four_digit_year { format!("{y}") } else { format!("{:02}", y % 100) };
            let date = match order {
                DateOrder::Dmy => format!("{d}{sep}{mo}{sep}{yy}"),
                DateOrder::Mdy => format!("{mo}{sep}{d}{sep}{yy}"),
                DateOrder::Ymd => format!("{yy}{sep}{mo:02}{sep}{d:02}"),
                DateOrder::Ydm => format!("{y}{sep}{d}{sep}{mo}"),
                DateOrder::Myd => format!("{mo}{sep}{y}{sep}{d}"),
                DateOrder::Dym => format!("{d}{sep}{y}{sep}{mo}"),
            };
            let hh = if twelve { if h % 12 == 0 { 12 } else { h % 12 } } else { h };
            let mut time = format!("{hh}:{mi:02}");
            if seconds {
                time.push_str(&format!(":{s:02}"));
            }
            if twelve {
                time.push_str(space);
                time.push_str(if h < 12 { am } else { pm });
            }
            let head = digits(&format!("{date}, {time}"), script).replace(',', if script > 0 { "،" } else { "," });
            let author = *rng.pick(AUTHORS);
            let body = *rng.pick(TEXTS);
            if bracket {
                text.push_str(&format!("[{head}] {author}: {body}\n"));
            } else {
                text.push_str(&format!("{head}{after}{author}: {body}\n"));
            }
            want.push((
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{:02}", if seconds { s } else { 0 }),
                author,
                body,
            ));
        }
        let lines: Vec<&str> = text.lines().collect();
        let forced = None;
        let (msgs, _) = parse(&lines, "c", forced);
        let got: Vec<(String, &str, &str)> =
            msgs.iter().map(|m| (m.ts.clone(), m.author.as_deref().unwrap_or("<none>"), m.text.as_str())).collect();
        let want: Vec<(String, &str, &str)> = want.iter().map(|(a, b, c)| (a.clone(), *b, *c)).collect();
        assert_eq!(got, want, "case {case}:\n{text}");
    }
}
