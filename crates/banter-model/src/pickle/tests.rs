//! Unit tests of `pickle`.

use super::*;

#[test]
fn code_in_a_pickle_is_refused_by_name_and_never_run() {
    // cos\nsystem\n(S'touch /tmp/pwned'\ntR. — the classic payload.
    let evil = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.";
    let e = unpickle(evil).unwrap_err();
    assert!(e.contains("os.system") && e.contains("nothing was run"), "{e}");
    let e = unpickle(b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94.").unwrap_err();
    assert!(e.contains("builtins.eval"), "{e}");
}

#[test]
fn truncated_and_odd_pickles_are_errors_not_panics() {
    for bad in [&b""[..], b"\x80", b"(", b"K", b"X\xff\xff\xff\xff", b"t.", b"R.", b"\xff"] {
        assert!(unpickle(bad).is_err(), "{bad:?}");
    }
}

proptest::proptest! {
    /// Arbitrary bytes, and a real state-dict pickle with bytes flipped, are errors or a state dict —
    /// never a panic, never a global outside the allow-list.
    #[test]
    fn arbitrary_pickles_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                                     flips in proptest::collection::vec((0usize..200, proptest::num::u8::ANY), 0..6)) {
        let _ = unpickle(&bytes);
        let mut real = STATE_DICT.to_vec();
        for (at, b) in flips {
            let i = at % real.len();
            real[i] = b;
        }
        let _ = unpickle(&real);
    }
}

#[test]
fn memo_bombs_deep_nesting_and_mark_floods_are_refused_quickly() {
    // h k h k TUPLE2 q k+1, 40 times: each value is a pair of copies of the last (2^40 values).
    let mut bomb = b"\x80\x02K\x01q\x00".to_vec();
    for k in 0u8..40 {
        bomb.extend_from_slice(&[b'h', k, b'h', k, 0x86, b'q', k + 1]);
    }
    bomb.push(b'.');
    assert_eq!(bomb.len(), 6 + 280 + 1);
    let e = unpickle(&bomb).unwrap_err();
    assert!(e.contains("bomb"), "{e}");
    // 200,000 nested one-tuples.
    let mut deep = b")".to_vec();
    deep.extend(std::iter::repeat_n(0x85u8, 200_000));
    deep.push(b'.');
    assert!(unpickle(&deep).unwrap_err().contains("nested"));
    // Nesting through lists and dicts (APPEND, SETITEM) is bounded too.
    let mut deep = vec![b']'; 300];
    deep.extend(vec![b'a'; 299]);
    deep.push(b'.');
    assert!(unpickle(&deep).unwrap_err().contains("nested"));
    // Millions of MARKs.
    let marks = vec![b'('; 3_000_000];
    assert!(unpickle(&marks).unwrap_err().contains("stack"));
    // Many memo entries.
    let mut memo = b"K\x01".to_vec();
    for k in 0u32..1_200_000 {
        memo.push(b'r');
        memo.extend_from_slice(&k.to_le_bytes());
    }
    assert!(unpickle(&memo).unwrap_err().contains("memo"));
}

/// The opcodes that build, copy and nest values, with small arguments.
fn structural_op() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    prop_oneof![
        Just(vec![b'(']),
        Just(vec![b')']),
        Just(vec![b']']),
        Just(vec![b'}']),
        Just(vec![0x85]),
        Just(vec![0x86]),
        Just(vec![0x87]),
        Just(vec![b't']),
        Just(vec![b'l']),
        Just(vec![b'a']),
        Just(vec![b'e']),
        Just(vec![b'u']),
        Just(vec![b's']),
        Just(vec![b'0']),
        Just(vec![0x94]),
        (0u8..8).prop_map(|k| vec![b'q', k]),
        (0u8..8).prop_map(|k| vec![b'h', k]),
        (0u8..255).prop_map(|k| vec![b'K', k]),
    ]
}

proptest::proptest! {
    /// Any sequence of building, copying and nesting opcodes ends in a value or an error, within the
    /// unpickler's bounds: never a panic, a stack overflow or unbounded memory.
    #[test]
    fn structural_opcode_sequences_stay_bounded(ops in proptest::collection::vec(structural_op(), 0..3000)) {
        let mut bytes: Vec<u8> = ops.concat();
        bytes.push(b'.');
        let mut m = Machine { data: &bytes, pos: 0, stack: Vec::new(), memo: HashMap::new(), work: 0, budget: work_budget(bytes.len()) };
        let mut ended = false;
        while let Ok(op) = m.u8() {
            match m.step(op) {
                Ok(true) => { ended = true; break; }
                Ok(false) => {}
                Err(_) => break,
            }
        }
        proptest::prop_assert!(m.work <= m.budget.saturating_add(1 << 22));
        proptest::prop_assert!(m.stack.iter().all(|v| measure(v).1 <= MAX_DEPTH + 1));
        let _ = ended;
    }
}

/// `torch.save({'w': torch.zeros(2)})`'s data.pkl (protocol 2).
pub(crate) const STATE_DICT: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x02tq\x07QK\x00K\x02\x85q\x08K\x01\x85q\t\x89ccollections\nOrderedDict\nq\n)Rq\x0btq\x0cRq\rs.";

#[test]
fn a_torch_save_state_dict_is_read() {
    let specs = unpickle(STATE_DICT).unwrap();
    assert_eq!(specs.len(), 1);
    match &specs[0] {
        (name, V::Tensor { kind, key, offset, size, stride }) => {
            assert_eq!((name.as_str(), *kind, key.as_str(), *offset), ("w", Kind::Float, "0", 0));
            assert_eq!((size.as_slice(), stride.as_slice()), (&[2i64][..], &[1i64][..]));
        }
        other => panic!("{other:?}"),
    }
}
