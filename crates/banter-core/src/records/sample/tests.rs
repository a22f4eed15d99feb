//! Unit tests of `sample`.

use super::*;
use serde_json::json;

fn parse(line: &str) -> Result<Sample, FieldError> {
    Sample::from_value(serde_json::from_str(line).unwrap())
}

fn round_trip(line: &str) {
    let s = parse(line).unwrap();
    assert_eq!(serde_json::to_string(&s.to_value()).unwrap(), line);
}

#[test]
fn every_shape_and_alias_parses_and_round_trips() {
    for line in [
        r#"{"text":"<USR_A> hi <SYS> salam"}"#,
        r#"{"id":"a1","input":"What is ML?","output":"A field of AI.","source":"mtn"}"#,
        r#"{"prompt":"p","response":"r"}"#,
        r#"{"prompt":"p","completion":"c","meta":{"k":[1,2]}}"#,
        r#"{"input":"p","completion":"c"}"#,
        r#"{"messages":[{"role":"system","content":"You are Sara."},{"role":"user","content":"سلام","name":"Ali","x":1},{"role":"assistant","content":"hey 👋"}],"ts":"2026-01-01T00:00:00Z"}"#,
    ] {
        round_trip(line);
    }
    let s = parse(r#"{"prompt":"p","response":"r"}"#).unwrap();
    assert_eq!(s.shape(), "pair");
    let SampleBody::Pair { input, output, .. } = &s.body else { panic!() };
    assert_eq!((input.as_str(), output.as_str()), ("p", "r"));
    let s = parse(r#"{"messages":[{"role":"user","content":"a","name":"Ali"}]}"#).unwrap();
    assert_eq!(s.turns()[0].name.as_deref(), Some("Ali"));
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (r#"{"messages":{"role":"user"}}"#, "field \"messages\": expected an array, found an object"),
        (r#"{"messages":[{"content":"x"}]}"#, "field \"messages[0].role\": missing"),
        (
            r#"{"messages":[{"role":"user","content":"x"},{"role":"bot","content":"y"}]}"#,
            "field \"messages[1].role\": unknown role \"bot\" (expected system, user or assistant)",
        ),
        (
            r#"{"messages":[{"role":"user","content":null}]}"#,
            "field \"messages[0].content\": expected a string, found null",
        ),
        (r#"{"messages":["hi"]}"#, "field \"messages[0]\": expected a JSON object, found a string"),
        (r#"{"input":"x"}"#, "field \"output\": missing (a pair needs \"output\", \"response\" or \"completion\")"),
        (r#"{"response":"x"}"#, "field \"input\": missing (a pair needs \"input\" or \"prompt\")"),
        (r#"{"input":"x","output":5}"#, "field \"output\": expected a string, found a number"),
        (r#"{"text":["a"]}"#, "field \"text\": expected a string, found an array"),
        (r#"{"id":1}"#, "no usable fields: a sample needs \"text\", \"input\"/\"output\" or \"messages\""),
    ];
    for (line, want) in cases {
        assert_eq!(parse(line).unwrap_err().to_string(), want, "{line}");
    }
    let e = Sample::from_value(json!([1])).unwrap_err();
    assert_eq!(e.to_string(), "expected a JSON object, found an array");
}

#[test]
fn messages_win_over_other_shapes_and_the_rest_is_kept() {
    let line = r#"{"text":"old","messages":[{"role":"assistant","content":"a"}]}"#;
    let s = parse(line).unwrap();
    assert_eq!(s.shape(), "chat");
    assert_eq!(s.fields.get("text"), Some(&json!("old")));
    round_trip(line);
}

#[test]
fn built_samples_serialize_canonically() {
    let s = Sample::chat(vec![Turn::new(Role::User, "hi").named("Ali"), Turn::new(Role::Assistant, "yo")]);
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        r#"{"messages":[{"role":"user","content":"hi","name":"Ali"},{"role":"assistant","content":"yo"}]}"#
    );
    assert_eq!(serde_json::to_string(&Sample::pair("a", "b")).unwrap(), r#"{"input":"a","output":"b"}"#);
}
