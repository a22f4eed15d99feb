//! Unit tests of `sample`.

use super::*;

#[test]
fn numbers_out_of_range_are_refused_by_both_parses() {
    let line = r#"{"text":"big 1e400 ok","n":1e400}"#;
    assert!(Sample::body_from_str(line).unwrap_err().to_string().contains("out of range"));
    assert!(crate::records::parse_json(line).is_err());
    // In a string, or in range, it is fine.
    assert!(Sample::body_from_str(r#"{"text":"1e400","n":1e300,"m":-2.5E-7}"#).is_ok());
    assert!(!super::out_of_range_number(r#"{"a":"\"1e999"}"#));
    assert!(super::out_of_range_number(r#"{"a":[1,-1e999]}"#));
}

#[test]
fn fast_body_agrees_with_the_full_parse() {
    let lines = [
        r#"{"text":"a\nb \"q\""}"#,
        r#"{"id":1,"input":"x","output":"y","meta":{"k":[1,2,{"z":null}]}}"#,
        r#"{"prompt":"p","completion":"c"}"#,
        r#"{"input":"p","response":"r","prompt":"ignored"}"#,
        r#"{"messages":[{"role":"user","content":"hi","name":"Ali","x":1},{"role":"assistant","content":"yo"}],"text":"old"}"#,
        r#"{"messages":[{"role":"bot","content":"x"}]}"#,
        r#"{"messages":{"role":"user"}}"#,
        r#"{"input":"x"}"#,
        r#"{"input":null,"output":"y"}"#,
        r#"{"text":"a","text":"b"}"#,
        r#"{"id":1}"#,
        r#"[1]"#,
        r#"{"text":"#,
        r#"{"messages":[{"role":"user","content":null}]}"#,
    ];
    // Unknown fields of turns are not kept by the fast view: compare without them.
    let strip = |b: SampleBody| match b {
        SampleBody::Chat(turns) => {
            SampleBody::Chat(turns.into_iter().map(|t| Turn { fields: Fields::default(), ..t }).collect())
        }
        other => other,
    };
    for line in lines {
        let full = crate::records::parse_json(line).and_then(Sample::from_value).map(|s| strip(s.body));
        assert_eq!(Sample::body_from_str(line).map(strip), full, "{line}");
    }
}
