//! Property tests of main-text extraction and the address policy: any HTML-ish input extracts without
//! panicking; no IPv4-mapped or NAT64 spelling of a non-public address passes.

use banter_scrape::{address, extract};
use proptest::prelude::*;

fn htmlish() -> impl Strategy<Value = String> {
    let tag = "(p|div|article|main|nav|footer|script|style|h1|li|ul|table|td|br|a|span|header|aside)";
    prop::collection::vec(
        prop_oneof![
            (tag, "( class=\"[a-z -]{0,12}\"| id=\"[a-z]{0,8}\")?").prop_map(|(t, a)| format!("<{t}{a}>")),
            tag.prop_map(|t| format!("</{t}>")),
            "\\PC{0,60}",
            Just("<!--".to_string()),
            Just("&amp;&#x1F600;&nbsp;&#0;".to_string()),
        ],
        0..60,
    )
    .prop_map(|parts| format!("<html><body>{}</body></html>", parts.concat()))
}

proptest! {
    #[test]
    fn fuzz_extract_never_panics(html in htmlish()) {
        let _ = extract::extract(&html, None);
    }

    #[test]
    fn fuzz_extract_arbitrary_text(html in "\\PC{0,400}") {
        let _ = extract::extract(&html, None);
    }

    #[test]
    fn fuzz_embedded_ipv4_is_judged_by_the_ipv4(a in any::<u8>(), b in any::<u8>(), c in any::<u8>(), d in any::<u8>()) {
        let v4 = std::net::Ipv4Addr::new(a, b, c, d);
        let blocked = address::is_private(&std::net::IpAddr::V4(v4));
        let mapped = std::net::IpAddr::V6(v4.to_ipv6_mapped());
        let nat64: std::net::IpAddr = format!("64:ff9b::{v4}").parse().unwrap();
        prop_assert_eq!(address::is_private(&mapped), blocked);
        prop_assert_eq!(address::is_private(&nat64), blocked);
    }
}
