//! Personal data: emails, phone numbers (Latin, Persian and Arabic-Indic digits; Iranian mobiles and
//! `+`/`00` international forms), public IP addresses (parse-validated), and card numbers that pass
//! the Luhn check. Found spans can be redacted (`--redact-pii`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::text::digit_value;

/// What kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A public IPv4 or IPv6 address.
    Ip,
    /// A payment card number (Luhn-valid).
    Card,
}

impl Kind {
    /// The report name and redaction tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Ip => "ip",
            Kind::Card => "card",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Kind::Email => "[EMAIL]",
            Kind::Phone => "[PHONE]",
            Kind::Ip => "[IP]",
            Kind::Card => "[CARD]",
        }
    }
}

/// One piece of personal data in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// What it is.
    pub kind: Kind,
    /// Where, in bytes.
    pub span: Range<usize>,
}

const D: &str = "[0-9\u{06F0}-\u{06F9}\u{0660}-\u{0669}]";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}").expect("email")
});
static DIGITS: LazyLock<Regex> = LazyLock::new(|| {
    // A run of digits with the separators people type inside numbers, optionally after + or (.
    Regex::new(&format!(r"(?:\+|\(\s*)?{D}(?:{D}|[ \-.()\u{{00A0}}]{{1,2}}(?:{D}))*")).expect("digits")
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b").expect("ipv4"));
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b").expect("ipv6"));

/// Finds personal data in a text, sorted by position, not overlapping.
pub fn find(t: &str) -> Vec<Found> {
    let mut out = Vec::new();
    // One pass over the bytes decides which detectors can match at all.
    let (mut at, mut colons, mut digits) = (false, 0usize, 0usize);
    let bytes = t.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'@' => at = true,
            b':' => colons += 1,
            // Lead bytes of Persian (DB B0-B9) and Arabic-Indic (D9 A0-A9) digits.
            0xDB if matches!(bytes.get(i + 1), Some(0xB0..=0xB9)) => digits += 1,
            0xD9 if matches!(bytes.get(i + 1), Some(0xA0..=0xA9)) => digits += 1,
            _ => {}
        }
    }
    if at {
        out.extend(EMAIL.find_iter(t).map(|m| Found { kind: Kind::Email, span: m.range() }));
    }
    if digits >= 7 {
        for m in IPV4.find_iter(t) {
            if is_public_v4(t, m.range()) {
                out.push(Found { kind: Kind::Ip, span: m.range() });
            }
        }
        for m in DIGITS.find_iter(t) {
            let span = trim_span(t, m.range());
            if out.iter().any(|f| overlaps(&f.span, &span)) {
                continue;
            }
            let digits: Vec<u8> = t[span.clone()].chars().filter_map(digit_value).collect();
            if let Some(kind) = classify_number(&t[span.clone()], &digits) {
                out.push(Found { kind, span });
            }
        }
    }
    if colons >= 2 {
        for m in IPV6.find_iter(t) {
            if out.iter().any(|f| overlaps(&f.span, &m.range())) {
                continue;
            }
            if let Ok(ip) = m.as_str().parse::<Ipv6Addr>()
                && is_public_v6(&ip)
            {
                out.push(Found { kind: Kind::Ip, span: m.range() });
            }
        }
    }
    out.sort_by_key(|f| f.span.start);
    out.dedup_by(|b, a| overlaps(&a.span, &b.span));
    out
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

fn trim_span(t: &str, r: Range<usize>) -> Range<usize> {
    let s = &t[r.clone()];
    let trimmed = s.trim_end_matches([' ', '-', '.', '(', ')', '\u{00A0}']);
    let lead = s.len() - s.trim_start_matches(['(', ' ']).len();
    let lead = if s.starts_with('+') { 0 } else { lead };
    r.start + lead..r.start + trimmed.len()
}

/// Phone or card, from the digits of a number-like span.
fn classify_number(s: &str, digits: &[u8]) -> Option<Kind> {
    let n = digits.len();
    let international = s.starts_with('+') || (s.starts_with("00") && n > 10);
    if (13..=19).contains(&n) && luhn(digits) && !international {
        return Some(Kind::Card);
    }
    // Iranian mobiles: 09xxxxxxxxx, 9xxxxxxxxx after +98 / 0098.
    let iranian = match digits {
        [0, 9, rest @ ..] if rest.len() == 9 => true,
        [9, 8, 9, rest @ ..] if rest.len() == 9 => s.starts_with('+'),
        [0, 0, 9, 8, 9, rest @ ..] if rest.len() == 9 => true,
        _ => false,
    };
    if iranian {
        return Some(Kind::Phone);
    }
    if international && (8..=15).contains(&(if s.starts_with('+') { n } else { n - 2 })) {
        return Some(Kind::Phone);
    }
    // National formats with separators, e.g. (555) 123-4567, 555-123-4567, 020 7946 0958.
    let has_sep = s.chars().any(|c| matches!(c, ' ' | '-' | '(' | ')'));
    if has_sep && ((10..=11).contains(&n) && digits[0] != 0 || n == 11 && digits[0] == 0) {
        let groups = s.split(|c: char| !c.is_alphanumeric()).filter(|g| !g.is_empty()).count();
        if (2..=5).contains(&groups) && !s.contains('.') {
            return Some(Kind::Phone);
        }
    }
    None
}

/// The Luhn checksum of card numbers.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10) && digits.iter().any(|&d| d != 0)
}

fn is_public_v4(t: &str, r: Range<usize>) -> bool {
    // Not a version string (v1.2.3.4, "version 10.0.0.1") or part of a longer dotted number.
    let before = &t[..r.start];
    let after = &t[r.end..];
    if before.ends_with(['.', 'v', 'V'])
        || after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit())
    {
        return false;
    }
    if before.trim_end().to_ascii_lowercase().ends_with("version") {
        return false;
    }
    let Ok(ip) = t[r].parse::<Ipv4Addr>() else { return false };
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: &Ipv6Addr) -> bool {
    let seg = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00
        || (seg[0] & 0xffc0) == 0xfe80
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        || seg.iter().filter(|&&s| s != 0).count() < 2)
}

/// "2 phone, 1 email" for reports.
pub fn summary(found: &[Found]) -> String {
    let mut kinds: Vec<Kind> = found.iter().map(|f| f.kind).collect();
    kinds.sort();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < kinds.len() {
        let k = kinds[i];
        let n = kinds[i..].iter().take_while(|&&x| x == k).count();
        parts.push(format!("{n} {}", k.as_str()));
        i += n;
    }
    parts.join(", ")
}

/// Replaces each found span with `[EMAIL]`, `[PHONE]`, `[IP]` or `[CARD]`.
pub fn redact(t: &str, found: &[Found]) -> String {
    let mut out = String::with_capacity(t.len());
    let mut pos = 0;
    for f in found {
        out.push_str(&t[pos..f.span.start]);
        out.push_str(f.kind.tag());
        pos = f.span.end;
    }
    out.push_str(&t[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &str) -> Vec<&'static str> {
        find(t).iter().map(|f| f.kind.as_str()).collect()
    }

    #[test]
    fn emails() {
        assert_eq!(kinds("write to sara.k+news@mail.example.co.uk today"), ["email"]);
        assert!(kinds("@sara on twitter").is_empty());
    }

    #[test]
    fn phones_in_every_digit_script() {
        assert_eq!(kinds("call 09121234567"), ["phone"]);
        assert_eq!(kinds("شماره‌ام ۰۹۱۲۱۲۳۴۵۶۷ هست"), ["phone"]);
        assert_eq!(kinds("رقم ٠٩١٢١٢٣٤٥٦٧"), ["phone"]);
        assert_eq!(kinds("+98 912 123 4567"), ["phone"]);
        assert_eq!(kinds("+44 20 7946 0958"), ["phone"]);
        assert_eq!(kinds("00989121234567"), ["phone"]);
        assert_eq!(kinds("(555) 123-4567"), ["phone"]);
        assert!(kinds("in 2023 we sold 1234567 units").is_empty());
        assert!(kinds("the year 1402/05/12").is_empty());
    }

    #[test]
    fn cards_need_luhn() {
        assert_eq!(kinds("card 4111 1111 1111 1111 exp"), ["card"]);
        assert_eq!(kinds("card 4111-1111-1111-1111"), ["card"]);
        assert!(kinds("order 4111 1111 1111 1112").iter().all(|k| *k != "card"));
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
    }

    #[test]
    fn only_public_ips() {
        assert_eq!(kinds("server at 8.8.8.8 is down, and 1.1.1.1 too"), ["ip", "ip"]);
        assert!(kinds("router 192.168.1.1 and 10.0.0.2 and 127.0.0.1").is_empty());
        assert!(kinds("upgrade to v1.2.3.4 or version 2.0.1.5").is_empty());
        assert!(kinds("docs use 192.0.2.10").is_empty());
        assert_eq!(kinds("v6 2a00:1450:4001:81b::200e here"), ["ip"]);
        assert!(kinds("local ::1 and fe80::1 and at 12:30:45").is_empty());
    }

    #[test]
    fn redaction() {
        let t = "mail a@b.io or call +98 912 123 4567.";
        assert_eq!(redact(t, &find(t)), "mail [EMAIL] or call [PHONE].");
        assert_eq!(summary(&find(t)), "1 email, 1 phone");
    }
}
