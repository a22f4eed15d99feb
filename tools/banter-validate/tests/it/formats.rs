//! Input formats: JSON arrays, every sample shape.

use crate::{bin, data};

#[test]
fn json_array_input_is_read() {
    let (code, r) = crate::json_report(bin().arg(data("mtn.json")));
    assert_eq!(code, 0);
    assert_eq!(r["counts"]["total"], 3);
    assert_eq!(r["checks"]["empty"]["rejected"], 1);
    let ex = &r["examples"][0];
    assert_eq!(ex["line"], 6, "line of the element in the array file: {ex}");
}

#[test]
fn every_shape_and_alias() {
    let input = concat!(
        r#"{"text":"A plain text sample that is long enough to pass."}"#,
        "\n",
        r#"{"prompt":"p?","completion":"A completion that is long enough."}"#,
        "\n",
        r#"{"input":"i?","response":"A response that is long enough."}"#,
        "\n",
        r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hello there, friend!"}]}"#,
        "\n",
    );
    let out = bin().arg("-").arg("--filter").arg("-q").write_stdin(input).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), input);
}
