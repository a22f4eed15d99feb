//! Property tests of the export parser: any lines, header-like or not, parse without panicking, and every
//! line is accounted for (a message's, the preamble's, or an invalid header's).

use banter_whatsapp::{header, parse};
use proptest::prelude::*;

fn headerish() -> impl Strategy<Value = String> {
    let date = "[0-9]{1,4}[./-][0-9]{1,2}[./-][0-9]{1,4}";
    let time = "[0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2})?( ?(AM|PM|am|pm|a\\. m\\.|ق\\.ظ))?";
    (date, "(, | |، )", time, "( - |\\] |: )", "\\PC{0,12}", "(: )?", "\\PC{0,30}", any::<bool>()).prop_map(
        |(d, s, t, sep, name, colon, body, bracket)| {
            format!("{}{d}{s}{t}{sep}{name}{colon}{body}", if bracket { "[" } else { "" })
        },
    )
}

proptest! {
    #[test]
    fn fuzz_header_scan_never_panics(line in "\\PC{0,80}") {
        let _ = header::scan(&line);
    }

    #[test]
    fn fuzz_parse_accounts_for_every_line(lines in prop::collection::vec(prop_oneof![headerish(), "\\PC{0,40}"], 0..40)) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (messages, rep) = parse::parse(&refs, "chat", None);
        prop_assert!(rep.preamble_lines.len() <= lines.len());
        prop_assert!(messages.len() + rep.preamble_lines.len() <= lines.len());
        for &n in rep.invalid_headers.iter().chain(&rep.preamble_lines) {
            prop_assert!(n >= 1 && n as usize <= lines.len());
        }
    }
}
