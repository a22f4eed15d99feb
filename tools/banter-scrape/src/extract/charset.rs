//! The page's character set: HTTP header, `<meta>`, BOM, else UTF-8 (windows-1252 when that fails).

/// The charset a page declares in `<meta charset>` or `<meta http-equiv="Content-Type">` (first 4 KB).
pub fn meta_charset(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(4096)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let s = String::from_utf8_lossy(&lower);
    let i = s.find("charset=")?;
    let rest = &s[i + 8..];
    let rest = rest.trim_start_matches(['"', '\'', ' ']);
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(rest.len());
    let cs = &rest[..end];
    (!cs.is_empty()).then(|| cs.to_string())
}

/// Decodes a page: the HTTP charset, else `<meta>`, else a BOM, else UTF-8 (windows-1252 if that fails).
pub fn decode(bytes: &[u8], http_charset: Option<&str>) -> (String, &'static str) {
    if let Some((enc, _)) = encoding_rs::Encoding::for_bom(bytes) {
        let (s, _, _) = enc.decode(bytes);
        return (s.into_owned(), enc.name());
    }
    let label = http_charset.map(str::to_string).or_else(|| meta_charset(bytes));
    let enc = label.and_then(|l| encoding_rs::Encoding::for_label(l.trim().as_bytes()));
    let enc = match enc {
        Some(e) => e,
        None if std::str::from_utf8(bytes).is_ok() => encoding_rs::UTF_8,
        None => encoding_rs::WINDOWS_1252,
    };
    let (s, _, _) = enc.decode(bytes);
    (s.into_owned(), enc.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        let (s, enc) = decode(b"<meta charset=\"windows-1256\"><p>\xc7\xe1\xd3\xe1\xc7\xe3</p>", None);
        assert_eq!(enc, "windows-1256");
        assert!(s.contains("السلام"), "{s}");
        let (s, _) = decode("<p>سلام</p>".as_bytes(), None);
        assert!(s.contains("سلام"));
        let (_, enc) = decode(b"<p>caf\xe9</p>", None);
        assert_eq!(enc, "windows-1252");
        let (_, enc) = decode(b"<p>x</p>", Some("ISO-8859-1"));
        assert_eq!(enc, "windows-1252");
    }
}
