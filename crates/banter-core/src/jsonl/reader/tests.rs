//! Unit tests of `reader`.

use super::*;
use crate::records::{Record, Sample};

fn read(bytes: &[u8], opts: ReadOptions) -> Vec<Result<Line, Error>> {
    JsonlReader::new("t.jsonl", Box::new(io::Cursor::new(bytes.to_vec())), opts).collect()
}

fn ok_lines(bytes: &[u8]) -> Vec<(u64, String)> {
    read(bytes, ReadOptions::default())
        .into_iter()
        .map(|r| {
            let l = r.unwrap();
            (l.line, l.record.to_string())
        })
        .collect()
}

#[test]
fn blank_lines_crlf_and_bom() {
    let got = ok_lines(b"\xEF\xBB\xBF{\"text\":\"a\"}\r\n\r\n   \n{\"text\":\"b\"}\r\n\n{\"text\":\"c\"}");
    assert_eq!(got, vec![(1, r#"{"text":"a"}"#.into()), (4, r#"{"text":"b"}"#.into()), (6, r#"{"text":"c"}"#.into())]);
    assert!(ok_lines(b"").is_empty());
    assert!(ok_lines(b"\n\n").is_empty());
}

#[test]
fn bad_json_is_reported_and_reading_goes_on() {
    let got = read(b"{\"text\":\"a\"}\n{\"text\":\n{\"text\":\"c\"}\n", ReadOptions::default());
    assert_eq!(got.len(), 3);
    let e = got[1].as_ref().unwrap_err();
    assert!(e.is_record_error());
    assert!(e.to_string().starts_with("t.jsonl:2: invalid JSON at column"), "{e}");
    assert_eq!(got[2].as_ref().unwrap().line, 3);
}

#[test]
fn invalid_utf8_is_reported_with_line_and_offset() {
    let got = read(b"{\"text\":\"a\"}\n{\"text\":\"\xff\"}\n{\"text\":\"c\"}\n", ReadOptions::default());
    let e = got[1].as_ref().unwrap_err();
    assert_eq!(e.to_string(), "t.jsonl:2: invalid UTF-8 at byte 9 of the line");
    assert_eq!(got[2].as_ref().unwrap().line, 3);
}

#[test]
fn over_long_line_is_skipped_not_held() {
    let long = format!("{{\"text\":\"{}\"}}\n", "x".repeat(10_000));
    let input = format!("{{\"text\":\"a\"}}\n{long}{{\"text\":\"c\"}}\n");
    let opts = ReadOptions { max_line_bytes: 100, ..Default::default() };
    let got = read(input.as_bytes(), opts);
    assert_eq!(got.len(), 3);
    assert!(matches!(got[1], Err(Error::LineTooLong { line: 2, limit: 100, .. })));
    assert!(
        got[1].as_ref().unwrap_err().to_string().starts_with("t.jsonl:2: line is longer than the limit of 100 bytes")
    );
    assert_eq!(got[2].as_ref().unwrap().line, 3);
    // A line of exactly the limit is fine, CRLF not counted.
    let exact = format!("\"{}\"\r\n", "y".repeat(98));
    let got = read(exact.as_bytes(), opts);
    assert!(got[0].is_ok());
}

#[test]
fn json_array_files_are_read_with_element_lines() {
    let input = "\u{feff}[\n  {\"input\": \"a\", \"output\": \"b\"},\n  {\n    \"input\": \"c\",\n    \"output\": \"d\"\n  }\n]\n";
    let got = ok_lines(input.as_bytes());
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, 2);
    assert_eq!(got[1].0, 3);
    assert_eq!(ok_lines(b"[]").len(), 0);
    assert_eq!(ok_lines(br#"[{"text":"a"},{"text":"b"}]"#).len(), 2);
}

#[test]
fn broken_json_arrays_are_reported() {
    let got = read(b"[\n{\"text\":\"a\"}\n{\"text\":\"b\"}\n]", ReadOptions::default());
    assert!(got[0].is_ok());
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        "t.jsonl:3: invalid JSON array: expected `,` or `]` between elements"
    );
    let got = read(b"[{\"text\":\"a\"},\n{\"text\":\"\xff\"}]", ReadOptions::default());
    assert_eq!(got[0].as_ref().unwrap_err().to_string(), "t.jsonl:2: invalid UTF-8 at byte 9 of the line");
    let got = read(b"[\n{\"text\":\"a\"},\n{\"text\":\n", ReadOptions::default());
    let e = got[1].as_ref().unwrap_err();
    assert!(e.to_string().starts_with("t.jsonl:4: invalid JSON at column 0: EOF while parsing"), "{e}");
    let got = read(b"[{\"text\":\"a\"}", ReadOptions::default());
    assert!(got[1].as_ref().unwrap_err().to_string().contains("not closed"));
    let got = read(b"[{\"text\":\"a\"}] x", ReadOptions::default());
    assert!(got[1].as_ref().unwrap_err().to_string().contains("after the closing"));
}

#[test]
fn typed_records_name_file_line_and_field() {
    let input = b"{\"text\":\"a\"}\n\n{\"messages\":3}\n";
    let r = JsonlReader::new("d.jsonl", Box::new(io::Cursor::new(input.to_vec())), ReadOptions::default());
    let got: Vec<_> = r.records::<Sample>().collect();
    assert_eq!(got[0].as_ref().unwrap().record, Sample::text("a"));
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        "d.jsonl:3: field \"messages\": expected an array, found a number"
    );
    let _ = Sample::from_value(Value::Null);
}

#[test]
fn missing_file_is_an_io_error() {
    let e = JsonlReader::open(&Source::parse("/nonexistent/x.jsonl"), ReadOptions::default()).unwrap_err();
    assert_eq!(e.exit(), crate::Exit::Io);
    assert!(e.to_string().starts_with("/nonexistent/x.jsonl: "));
}
