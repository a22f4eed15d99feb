//! SentencePiece `tokenizer.model` files (the protobuf `ModelProto`) read into a `tokenizers` tokenizer, for
//! models that ship only that file. Unigram and BPE models, byte fallback, control and user-defined pieces,
//! the normalizer's precompiled character map, whitespace handling (`remove_extra_whitespaces`,
//! `add_dummy_prefix`, `escape_whitespaces`) as the SentencePiece library applies them; BPE merges ranked
//! by the merged piece's score, as SentencePiece merges. Equal to SentencePiece's own `encode` (tested
//! against the `sentencepiece` package in `tools/banter-tokenize/tests`).
//!
//! The wire format is read by hand: three messages of a stable schema, where a protobuf code generator
//! (prost + protoc at build time) would cost more than the ~60 lines here.

use std::path::Path;

use banter_core::Error;
use serde_json::{Value, json};
use tokenizers::Tokenizer;
use tokenizers::normalizers::precompiled::Precompiled;

/// A piece's kind (`SentencePiece.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Byte,
    Unused,
}

#[derive(Debug)]
struct Piece {
    piece: String,
    score: f32,
    kind: PieceType,
}

/// What the tokenizer needs of a `ModelProto`.
#[derive(Debug)]
struct Model {
    pieces: Vec<Piece>,
    /// 1 unigram, 2 BPE (3 word and 4 char are refused).
    model_type: u64,
    byte_fallback: bool,
    unk_id: u64,
    charsmap: Vec<u8>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    treat_whitespace_as_suffix: bool,
}

/// Protobuf wire reading: (field number, value) pairs of one message.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    Fixed64,
}

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn fields(b: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(varint(b, &mut pos)?),
            1 => {
                pos = pos.checked_add(8).filter(|&p| p <= b.len()).ok_or("truncated fixed64")?;
                Field::Fixed64
            }
            2 => {
                let len = usize::try_from(varint(b, &mut pos)?).map_err(|_| "length overflow")?;
                let end = pos.checked_add(len).filter(|&e| e <= b.len()).ok_or("truncated field")?;
                let s = &b[pos..end];
                pos = end;
                Field::Bytes(s)
            }
            5 => {
                let s = b.get(pos..pos + 4).ok_or("truncated fixed32")?;
                pos += 4;
                Field::Fixed32(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            }
            w => return Err(format!("unsupported wire type {w} (field {num})")),
        };
        out.push((num, f));
    }
    Ok(out)
}

fn parse(bytes: &[u8]) -> Result<Model, String> {
    let mut m = Model {
        pieces: Vec::new(),
        model_type: 1,
        byte_fallback: false,
        unk_id: 0,
        charsmap: Vec::new(),
        add_dummy_prefix: true,
        remove_extra_whitespaces: true,
        escape_whitespaces: true,
        treat_whitespace_as_suffix: false,
    };
    for (num, f) in fields(bytes)? {
        match (num, f) {
            (1, Field::Bytes(p)) => {
                let mut piece = Piece { piece: String::new(), score: 0.0, kind: PieceType::Normal };
                for (n, f) in fields(p)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => {
                            piece.piece = String::from_utf8(s.to_vec()).map_err(|_| "a piece is not UTF-8")?
                        }
                        (2, Field::Fixed32(x)) => piece.score = f32::from_bits(x),
                        (3, Field::Varint(t)) => {
                            piece.kind = match t {
                                1 => PieceType::Normal,
                                2 => PieceType::Unknown,
                                3 => PieceType::Control,
                                4 => PieceType::UserDefined,
                                6 => PieceType::Byte,
                                5 => PieceType::Unused,
                                t => return Err(format!("piece type {t} is unknown")),
                            }
                        }
                        _ => {}
                    }
                }
                m.pieces.push(piece);
            }
            (2, Field::Bytes(t)) => {
                for (n, f) in fields(t)? {
                    match (n, f) {
                        (3, Field::Varint(v)) => m.model_type = v,
                        (24, Field::Varint(v)) => m.treat_whitespace_as_suffix = v != 0,
                        (35, Field::Varint(v)) => m.byte_fallback = v != 0,
                        (40, Field::Varint(v)) => m.unk_id = v,
                        _ => {}
                    }
                }
            }
            (3, Field::Bytes(n)) => {
                for (k, f) in fields(n)? {
                    match (k, f) {
                        (2, Field::Bytes(c)) => m.charsmap = c.to_vec(),
                        (3, Field::Varint(v)) => m.add_dummy_prefix = v != 0,
                        (4, Field::Varint(v)) => m.remove_extra_whitespaces = v != 0,
                        (5, Field::Varint(v)) => m.escape_whitespaces = v != 0,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if m.pieces.is_empty() {
        return Err("no pieces: not a SentencePiece model".into());
    }
    if !matches!(m.model_type, 1 | 2) {
        return Err(format!("model_type {} is not supported (unigram and BPE are)", m.model_type));
    }
    if !m.escape_whitespaces {
        return Err("models with escape_whitespaces off are not supported".into());
    }
    if m.treat_whitespace_as_suffix {
        return Err("treat_whitespace_as_suffix models are not supported".into());
    }
    Ok(m)
}

/// BPE merges from the vocabulary: every split of a normal piece into two pieces of the vocabulary,
/// ranked by the merged piece's id (SentencePiece stores pieces by descending score), then by the parts'.
fn merges(m: &Model, ids: &std::collections::HashMap<&str, usize>) -> Vec<(String, String)> {
    let mut all: Vec<(usize, usize, usize, &str, &str)> = Vec::new();
    for (id, p) in m.pieces.iter().enumerate().filter(|(_, p)| p.kind == PieceType::Normal) {
        for (cut, _) in p.piece.char_indices().skip(1) {
            let (l, r) = p.piece.split_at(cut);
            if let (Some(&a), Some(&b)) = (ids.get(l), ids.get(r)) {
                all.push((id, a, b, l, r));
            }
        }
    }
    all.sort_unstable();
    all.into_iter().map(|(_, _, _, l, r)| (l.to_string(), r.to_string())).collect()
}

fn build(m: &Model) -> Result<Value, String> {
    let unk = m.pieces.get(m.unk_id as usize).ok_or("unk_id is outside the vocabulary")?.piece.clone();
    let model = if m.model_type == 1 {
        let vocab: Vec<Value> = m.pieces.iter().map(|p| json!([p.piece, p.score])).collect();
        json!({"type": "Unigram", "unk_id": m.unk_id, "vocab": vocab, "byte_fallback": m.byte_fallback})
    } else {
        let ids: std::collections::HashMap<&str, usize> =
            m.pieces.iter().enumerate().map(|(i, p)| (p.piece.as_str(), i)).collect();
        let vocab: serde_json::Map<String, Value> =
            m.pieces.iter().enumerate().map(|(i, p)| (p.piece.clone(), json!(i))).collect();
        let merges: Vec<Value> = merges(m, &ids).into_iter().map(|(l, r)| json!([l, r])).collect();
        json!({"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
               "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": m.byte_fallback,
               "ignore_merges": false, "vocab": vocab, "merges": merges})
    };
    let mut norm = Vec::new();
    if !m.charsmap.is_empty() {
        let p = Precompiled::from(&m.charsmap).map_err(|e| format!("precompiled_charsmap: {e}"))?;
        norm.push(serde_json::to_value(&p).map_err(|e| e.to_string())?);
    }
    if m.remove_extra_whitespaces {
        // Leading spaces collapse to one, which then stands for the dummy prefix (stripping them would
        // make the pre-tokenizer's "first" see an offset other than 0 and add none).
        norm.push(json!({"type": "Strip", "strip_left": !m.add_dummy_prefix, "strip_right": true}));
        norm.push(json!({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}));
    } else if m.add_dummy_prefix {
        // Kept spaces: the dummy prefix comes on top of a leading one (the pre-tokenizer adds its `▁` only
        // to text that does not start with one).
        norm.push(json!({"type": "Replace", "pattern": {"Regex": "^ "}, "content": "  "}));
    }
    // Spaces become `▁` (and the dummy prefix is added) after user-defined pieces are split out, so the
    // pieces themselves are never prefixed and the space before one stays a `▁`, as in SentencePiece.
    let prepend = if m.add_dummy_prefix { "first" } else { "never" };
    let pre = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": prepend, "split": false});
    let mut dec = vec![json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "})];
    if m.byte_fallback {
        dec.push(json!({"type": "ByteFallback"}));
    }
    dec.push(json!({"type": "Fuse"}));
    if m.add_dummy_prefix {
        dec.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    // Control and user-defined pieces (and the unknown piece) are matched whole, before the model runs;
    // user-defined ones in the normalized text, as SentencePiece matches them (so the space before one
    // stays a `▁`), control ones in the raw text (a chat template writes `</s>` literally).
    let added: Vec<Value> = m
        .pieces
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.kind, PieceType::Control | PieceType::UserDefined | PieceType::Unknown))
        .map(|(i, p)| {
            json!({"id": i, "content": p.piece, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": p.kind == PieceType::UserDefined, "special": p.kind != PieceType::UserDefined})
        })
        .collect();
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": norm},
        "pre_tokenizer": pre, "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": dec},
        "model": model,
    }))
}

/// Reads a SentencePiece `tokenizer.model` as a tokenizer.
pub fn load(path: &Path) -> Result<Tokenizer, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    let bad = |m: String| Error::usage(format!("{}: not a SentencePiece model we can read: {m}", path.display()));
    let json = build(&parse(&bytes).map_err(bad)?).map_err(bad)?;
    json.to_string().parse().map_err(|e| bad(format!("{e}")))
}

/// A SentencePiece model's pieces as GGUF stores them: `(piece, score, type)` with SentencePiece's type
/// numbers (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), in id order.
pub fn pieces(path: &Path) -> Result<Vec<(String, f32, i32)>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    let m = parse(&bytes)
        .map_err(|m| Error::usage(format!("{}: not a SentencePiece model we can read: {m}", path.display())))?;
    let code = |k: PieceType| match k {
        PieceType::Normal => 1,
        PieceType::Unknown => 2,
        PieceType::Control => 3,
        PieceType::UserDefined => 4,
        PieceType::Unused => 5,
        PieceType::Byte => 6,
    };
    Ok(m.pieces.into_iter().map(|p| (p.piece, p.score, code(p.kind))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(out: &mut Vec<u8>, num: u64, b: &[u8]) {
        put_varint(out, (num << 3) | 2);
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    fn piece(s: &str, score: f32, kind: u64) -> Vec<u8> {
        let mut p = Vec::new();
        bytes_field(&mut p, 1, s.as_bytes());
        p.push((2 << 3) | 5);
        p.extend_from_slice(&score.to_le_bytes());
        p.push(3 << 3);
        put_varint(&mut p, kind);
        p
    }

    /// A hand-made BPE model: the pieces ▁, a, b, ab, ▁ab merge as SentencePiece would.
    #[test]
    fn a_hand_written_bpe_model_encodes_and_decodes() {
        let mut m = Vec::new();
        for (s, score, kind) in [
            ("<unk>", 0.0, 2),
            ("<s>", 0.0, 3),
            ("</s>", 0.0, 3),
            ("▁ab", -1.0, 1),
            ("ab", -2.0, 1),
            ("▁", -3.0, 1),
            ("a", -4.0, 1),
            ("b", -5.0, 1),
        ] {
            bytes_field(&mut m, 1, &piece(s, score, kind));
        }
        let mut trainer = Vec::new();
        trainer.push(3 << 3);
        put_varint(&mut trainer, 2);
        bytes_field(&mut m, 2, &trainer);
        let t: Tokenizer = build(&parse(&m).unwrap()).unwrap().to_string().parse().unwrap();
        let e = t.encode("ab  ba</s>", false).unwrap();
        assert_eq!(e.get_tokens(), ["▁ab", "▁", "b", "a", "</s>"]);
        assert_eq!(t.decode(e.get_ids(), true).unwrap(), "ab ba");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for b in [&b""[..], b"\x0a\xff\xff", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x0a\x05abc"] {
            assert!(parse(b).is_err(), "{b:?}");
        }
    }
}
