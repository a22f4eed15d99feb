//! Reading an export: a `.txt`, or the `.zip` WhatsApp shares (`_chat.txt`, else the largest `.txt`
//! inside); UTF-8 with or without BOM, UTF-16 (LE/BE, with or without BOM) detected; LF, CRLF or CR.

use std::io::Read;
use std::path::Path;

use banter_core::Error;
use banter_core::exit::{Coded, Exit};

/// An export read into memory, decoded.
#[derive(Debug)]
pub struct Export {
    /// The decoded text.
    pub text: String,
    /// The chat's name guessed from the file name ("WhatsApp Chat with Family.txt" → "Family").
    pub chat: String,
}

/// A zip entry inflating over this many times its compressed size (and past [`RATIO_FROM`]) is refused.
const MAX_RATIO: u64 = 200;
/// Inflated size from which the ratio is checked (small files compress well and harmlessly).
const RATIO_FROM: u64 = 1 << 20;

/// Reads an export from a path (`-` for stdin); a zip's chat may inflate to `max_inflated` bytes.
pub fn read(path: &str, max_inflated: u64) -> Result<Export, anyhow::Error> {
    let (bytes, name) = if path == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).map_err(|e| Error::io("-", e))?;
        (b, String::new())
    } else {
        let p = Path::new(path);
        banter_core::inputs::register(p);
        let b = std::fs::read(p).map_err(|e| Error::io(path, e))?;
        (b, p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    };
    if bytes.is_empty() {
        return Err(Error::io(path, banter_core::jsonl::no_input()).into());
    }
    let (bytes, inner_name) =
        if bytes.starts_with(b"PK\x03\x04") { from_zip(path, &bytes, max_inflated)? } else { (bytes, None) };
    let text = decode_owned(bytes).map_err(|msg| Coded::new(Exit::BadInput, format!("{path}: {msg}")))?;
    let chat = chat_name(inner_name.as_deref().filter(|n| !n.starts_with('_')).unwrap_or(&name));
    Ok(Export { text, chat })
}

fn from_zip(path: &str, bytes: &[u8], max_inflated: u64) -> Result<(Vec<u8>, Option<String>), anyhow::Error> {
    let bad = |e: String| Coded::new(Exit::BadInput, format!("{path}: not a readable zip archive: {e}"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let mut best: Option<(usize, u64, String)> = None;
    for i in 0..zip.len() {
        let f = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = f.name().to_string();
        if !name.to_lowercase().ends_with(".txt") {
            continue;
        }
        let base = name.rsplit('/').next().unwrap_or(&name).to_string();
        let is_chat = base == "_chat.txt";
        let better = match &best {
            None => true,
            Some((_, size, bname)) => bname != "_chat.txt" && (is_chat || f.size() > *size),
        };
        if better {
            best = Some((i, f.size(), base));
        }
    }
    let Some((i, _, name)) = best else {
        return Err(Coded::new(Exit::BadInput, format!("{path}: the zip archive holds no .txt chat")).into());
    };
    let f = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
    let bomb = |why: String| {
        Coded::new(
            Exit::BadInput,
            format!("{path}: {name} {why}: refused as a possible zip bomb (raise --max-inflated if it is real)"),
        )
    };
    // The headers' sizes may lie in both directions: the compressed bytes that can really be read are at most
    // what lies between the entry's data and the end of the archive, so the ratio is taken over that.
    let packed = banter_core::inflate::packed_bytes(f.compressed_size(), f.data_start(), bytes.len() as u64);
    let size = f.size();
    if size > max_inflated {
        return Err(bomb(format!("inflates to {size} bytes, over --max-inflated {max_inflated}")).into());
    }
    if size > RATIO_FROM && size / packed > MAX_RATIO {
        return Err(bomb(format!("inflates {}× ({packed} → {size} bytes)", size / packed)).into());
    }
    // The cap and the ratio hold on the bytes actually inflated, checked as they come (bounded memory).
    use banter_core::inflate::{Bounds, Inflate, read_bounded};
    let bounds = Bounds { cap: max_inflated, packed, max_ratio: MAX_RATIO, ratio_from: RATIO_FROM };
    let out = read_bounded(f, bounds).map_err(|e| -> anyhow::Error {
        match e {
            Inflate::Io(e) => bad(e.to_string()).into(),
            Inflate::OverCap => bomb(format!("inflates past --max-inflated {max_inflated}")).into(),
            Inflate::OverRatio(got) => {
                bomb(format!("inflates over {}× ({packed} → {got}+ bytes)", got / packed)).into()
            }
        }
    })?;
    Ok((out, Some(name)))
}

/// [`decode`], without copying UTF-8 input.
pub fn decode_owned(mut bytes: Vec<u8>) -> Result<String, String> {
    let utf16 =
        bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") || bytes.iter().take(4096).any(|&b| b == 0);
    if utf16 {
        return decode(&bytes);
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let err = e.utf8_error();
        utf8_error(e.as_bytes(), err)
    })
}

/// Decodes UTF-8 (BOM optional) or UTF-16 (BOM, or detected from zero bytes).
pub fn decode(bytes: &[u8]) -> Result<String, String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8(rest.to_vec()).map_err(|e| utf8_error(rest, e.utf8_error()));
    }
    let le = bytes.starts_with(b"\xFF\xFE");
    let be = bytes.starts_with(b"\xFE\xFF");
    let sample = &bytes[..bytes.len().min(4096)];
    let zeros_even = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let zeros_odd = sample.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    let half = sample.len() / 4;
    let (utf16, little) = if le || be {
        (true, le)
    } else if sample.len() >= 4 && zeros_odd > half && zeros_even == 0 {
        (true, true)
    } else if sample.len() >= 4 && zeros_even > half && zeros_odd == 0 {
        (true, false)
    } else {
        (false, false)
    };
    if utf16 {
        let body = if le || be { &bytes[2..] } else { bytes };
        if body.len() % 2 != 0 {
            return Err("UTF-16 text with an odd number of bytes".into());
        }
        let units = body
            .chunks_exact(2)
            .map(|c| if little { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) });
        return char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|e| format!("invalid UTF-16 (unpaired surrogate {:#06x})", e.unpaired_surrogate()));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| utf8_error(bytes, e.utf8_error()))
}

fn utf8_error(bytes: &[u8], e: std::str::Utf8Error) -> String {
    let at = e.valid_up_to();
    let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
    format!("line {line}: invalid UTF-8 (export the chat again, or convert it to UTF-8)")
}

/// Splits on LF, CRLF or lone CR.
pub fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / 40);
    let b = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < b.len() {
        out.push(&text[start..]);
    }
    out
}

/// "WhatsApp Chat with Family.txt" / "WhatsApp Chat - Family.zip" / "Chat de WhatsApp con Familia.txt" → the name.
pub fn chat_name(file: &str) -> String {
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    for prefix in [
        "WhatsApp Chat with ",
        "WhatsApp Chat - ",
        "WhatsApp-Chat mit ",
        "Chat de WhatsApp con ",
        "Discussion WhatsApp avec ",
        "Chat WhatsApp con ",
        "Conversa do WhatsApp com ",
        "WhatsApp-chat met ",
        "WhatsApp Chat mit ",
        "Chat WhatsApp dengan ",
    ] {
        if let Some(rest) = stem.strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
    stem.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings() {
        assert_eq!(lines("a\nb\r\nc\rd"), ["a", "b", "c", "d"]);
        assert_eq!(lines("a\n\nb\n"), ["a", "", "b"]);
    }

    #[test]
    fn encodings() {
        assert_eq!(decode(b"\xEF\xBB\xBFhi").unwrap(), "hi");
        let utf16le: Vec<u8> = "\u{feff}سلام hi".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode(&utf16le).unwrap(), "سلام hi");
        let no_bom_le: Vec<u8> = "12/02/2023, 10:00 - A: hi".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode(&no_bom_le).unwrap(), "12/02/2023, 10:00 - A: hi");
        let be: Vec<u8> = "\u{feff}hello".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        assert_eq!(decode(&be).unwrap(), "hello");
        assert!(decode(b"a\nb\xff").unwrap_err().starts_with("line 2: invalid UTF-8"));
    }

    #[test]
    fn chat_names() {
        assert_eq!(chat_name("WhatsApp Chat with Family.txt"), "Family");
        assert_eq!(chat_name("WhatsApp Chat - Trip 2023.zip"), "Trip 2023");
        assert_eq!(chat_name("export.txt"), "export");
    }
}
