//! Property tests ("fuzzing" on stable Rust): the JSONL reader, the record parsers and the chat templates
//! take any input without panicking, and every error names its line. `make test` runs the default number of
//! cases; `make fuzz` runs many more (PROPTEST_CASES).

use std::io::Cursor;

use banter_core::ChatTemplate;
use banter_core::jsonl::{JsonlReader, ReadOptions};
use banter_core::records::{Block, Record, Sample};
use proptest::prelude::*;

fn reader(bytes: Vec<u8>) -> JsonlReader {
    let opts = ReadOptions { max_line_bytes: 4096, ..ReadOptions::default() };
    JsonlReader::new("fuzz.jsonl", Box::new(Cursor::new(bytes)), opts)
}

/// JSON-ish lines: fragments of valid records, broken on purpose.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(
            "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}"
                .to_string()
        ),
        Just("{\"text\":\"plain\"}".to_string()),
        Just("{\"input\":\"q\",\"output\":\"a\"}".to_string()),
        Just("{\"input_ids\":[1,2,3],\"labels\":[-100,2,3]}".to_string()),
        Just("[{\"text\":\"array\"}]".to_string()),
        "[{}\\[\\]\":,a-z0-9\\\\ \n\r\u{feff}é-]{0,60}",
        Just("1e400".to_string()),
        Just("\"\\ud800\"".to_string()),
    ];
    prop::collection::vec((piece, any::<bool>()), 0..12).prop_map(|parts| {
        let mut out = Vec::new();
        for (p, cut) in parts {
            let b = p.into_bytes();
            out.extend_from_slice(if cut && !b.is_empty() { &b[..b.len() / 2] } else { &b });
            out.push(b'\n');
        }
        out
    })
}

proptest! {
    #[test]
    fn fuzz_jsonl_reader_never_panics_and_errors_name_a_line(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        for item in reader(bytes).records::<Sample>() {
            if let Err(e) = item {
                prop_assert!(e.to_string().starts_with("fuzz.jsonl"), "{}", e);
            }
        }
    }

    #[test]
    fn fuzz_records_from_json_like_lines(bytes in jsonish()) {
        for item in reader(bytes.clone()).records::<Sample>() {
            if let Err(e) = item {
                prop_assert!(e.to_string().starts_with("fuzz.jsonl"), "{}", e);
            }
        }
        for item in reader(bytes).records::<Block>() {
            let _ = item;
        }
    }

    #[test]
    fn fuzz_templates_render_any_sample_with_spans_inside_the_text(
        turns in prop::collection::vec(("(system|user|assistant)", "\\PC{0,40}"), 1..6),
        preset in "(chatml|asimbot)",
    ) {
        let msgs: Vec<serde_json::Value> =
            turns.iter().map(|(r, c)| serde_json::json!({"role": r, "content": c})).collect();
        if let Ok(sample) = Sample::from_value(serde_json::json!({"messages": msgs})) {
            let t = ChatTemplate::from_arg(&preset).unwrap();
            let r = t.render(&sample);
            let mut last = 0;
            for s in &r.loss_spans {
                prop_assert!(s.start >= last && s.end <= r.text.len() && s.start <= s.end);
                prop_assert!(r.text.is_char_boundary(s.start) && r.text.is_char_boundary(s.end));
                last = s.end;
            }
        }
    }
}

/// Template pieces that loop, nest, grow text and raise: every combination renders or fails with a
/// template error within the fuel limit — never a hang, an abort or a panic.
fn hostile_template() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("x".to_string()),
        Just("{{ m }}".to_string()),
        Just("{% set ns.s = ns.s ~ ns.s %}".to_string()),
        Just("{% set ns.s = ns.s + ns.s %}".to_string()),
        Just("{% set ns.l = ns.l + ns.l %}".to_string()),
        Just("{{ ns.l | length }}".to_string()),
        Just("{{ ns.s * 1000 }}".to_string()),
        Just("{{ raise_exception('no') }}".to_string()),
        Just("{{ messages | tojson }}".to_string()),
        Just("{{ ns.s | replace('a', ns.s) }}".to_string()),
    ];
    leaf.prop_recursive(4, 16, 3, |inner| {
        (prop_oneof![Just(10u64), Just(1000), Just(100_000)], proptest::collection::vec(inner, 1..3))
            .prop_map(|(n, body)| format!("{{% for i in range({n}) %}}{}{{% endfor %}}", body.concat()))
    })
    .prop_map(|body| {
        format!("{{% set ns = namespace(s='ab', l=[1, 2]) %}}{{% for m in messages %}}{body}{{{{ m['content'] }}}}{{% endfor %}}")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn hostile_chat_templates_end_within_their_limits(source in hostile_template()) {
        let j = match banter_core::jinja::Jinja::new(&source, "<s>", "</s>") {
            Ok(j) => j,
            Err(_) => return Ok(()),
        };
        let turns = [
            banter_core::records::Turn::new(banter_core::records::Role::User, "hi"),
            banter_core::records::Turn::new(banter_core::records::Role::Assistant, "yo"),
        ];
        match j.render(&turns, true) {
            // What a render may produce is bounded by its fuel: about 64 bytes per unit.
            Ok(text) => prop_assert!((text.len() as u64) < banter_core::jinja::fuel_for(2, 4) * 64),
            Err(e) => prop_assert!(e.starts_with("chat template:"), "{}", e),
        }
    }
}
