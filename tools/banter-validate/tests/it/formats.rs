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

/// Preference records (TRL pairs, rankings, corrected feedback): a bad ranking is malformed with its field
/// named; an equal, empty or echoed reply is found; good ones are kept as they came.
#[test]
fn preference_records_are_checked() {
    let good = concat!(
        r#"{"prompt":"where are you?","chosen":"At home, and you? Still at work?","rejected":"no"}"#,
        "\n",
        r#"{"prompt":"what's for dinner?","responses":["Pasta again, I think.","dunno","Soup with bread tonight."],"ranked_indices":[2,0,1]}"#,
        "\n",
    );
    let out = bin().arg("-").arg("--filter").arg("-q").write_stdin(good).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), good);
    let bad = concat!(
        r#"{"prompt":"q?","responses":["A fine answer here.","Another fine answer."],"ranked_indices":[0,0]}"#,
        "\n",
        r#"{"prompt":"q?","chosen":"The same answer twice over.","rejected":"The same answer twice over."}"#,
        "\n",
    );
    let (_, r) = crate::json_report(bin().arg("-").write_stdin(bad));
    assert_eq!(r["counts"]["total"], 2, "{r}");
    let text = r.to_string();
    assert!(text.contains("ranked_indices[1]"), "{text}");
    assert!(text.contains("nothing to prefer"), "{text}");
}
