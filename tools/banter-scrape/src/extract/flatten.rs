//! Pages nested deeper than any real layout (a broken or hostile page of 50,000 unclosed `<div>`s) would
//! overflow the stack of extractors that walk the tree recursively. Such a page is rewritten first: elements
//! deeper than [`MAX_DEPTH`] lose their tags but keep their text, so every word is still there to extract.
//! The parse and both walks here are iterative.
//!
//! The HTML parser itself checks its stack of open elements at each tag, so a page of a million nested tags
//! would take hours to parse: before parsing, [`cap_source`] scans the source and drops the tags that open
//! beyond [`SOURCE_DEPTH`] levels (elements whose end tag is optional, like `<p>` and `<li>`, do not count).

use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// Well beyond how deep real pages nest (the article-extraction-benchmark's deepest page: 50 levels);
/// rs-trafilatura repeats the text of a page nested 256 deep, and is right at 150.
pub(super) const MAX_DEPTH: usize = 128;

/// Nesting the source scan allows before it drops tags.
pub(super) const SOURCE_DEPTH: usize = 2048;

/// Elements that never nest in the source count: void elements, and those whose end tag may be left out.
fn no_depth(tag: &str) -> bool {
    is_void(tag)
        || matches!(
            tag,
            "p" | "li"
                | "dt"
                | "dd"
                | "option"
                | "optgroup"
                | "tr"
                | "td"
                | "th"
                | "thead"
                | "tbody"
                | "tfoot"
                | "colgroup"
                | "rb"
                | "rt"
                | "rp"
                | "html"
                | "head"
                | "body"
        )
}

/// The end of a tag starting at `i` (the index after its `>`), quotes respected.
fn tag_end(b: &[u8], i: usize) -> usize {
    let mut quote = 0u8;
    for (j, &c) in b.iter().enumerate().skip(i + 1) {
        match c {
            b'"' | b'\'' if quote == 0 => quote = c,
            c if c == quote => quote = 0,
            b'>' if quote == 0 => return j + 1,
            _ => {}
        }
    }
    b.len()
}

/// The source with the tags that open deeper than `limit` replaced by a space, or `None` when it never
/// nests that deep. Comments, `<!…>`/`<?…>` and the contents of script, style, textarea and title are
/// skipped as the parser would.
pub(super) fn cap_source(html: &str, limit: usize) -> Option<String> {
    let b = html.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    let mut drop: Vec<(usize, usize)> = Vec::new();
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        let at = i + off;
        let rest = &b[at..];
        if rest.starts_with(b"<!--") {
            i = html[at + 4..].find("-->").map_or(b.len(), |k| at + 4 + k + 3);
            continue;
        }
        if rest.len() < 2 || !(rest[1].is_ascii_alphabetic() || rest[1] == b'/' || rest[1] == b'!' || rest[1] == b'?') {
            i = at + 1;
            continue;
        }
        let end = tag_end(b, at);
        if rest[1] == b'!' || rest[1] == b'?' {
            i = end;
            continue;
        }
        let closing = rest[1] == b'/';
        let name_start = at + 1 + usize::from(closing);
        let name_len = b[name_start..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'-').count();
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let self_closing = end >= 2 && b[end - 2] == b'/';
        if !no_depth(&name) && !self_closing {
            if closing {
                if depth > limit {
                    drop.push((at, end));
                }
                depth = depth.saturating_sub(1);
            } else {
                depth += 1;
                if depth > limit {
                    drop.push((at, end));
                }
            }
        }
        i = end;
        if !closing && matches!(name.as_str(), "script" | "style" | "textarea" | "title") {
            i = raw_text_end(b, i, name.as_bytes());
        }
    }
    if drop.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(html.len());
    let mut last = 0;
    for (a, z) in drop {
        out.push_str(&html[last..a]);
        // A dropped tag still separates words; a run of them leaves one space.
        if !out.ends_with(|c: char| c.is_whitespace()) {
            out.push(' ');
        }
        last = z;
    }
    out.push_str(&html[last..]);
    Some(out)
}

/// Where the raw text of a `name` element (script, style, …) starting at `from` ends: its `</name`, found
/// without copying the rest of the page (case-insensitively).
fn raw_text_end(b: &[u8], from: usize, name: &[u8]) -> usize {
    let mut i = from;
    while let Some(k) = b[i..].windows(2).position(|w| w == b"</") {
        let at = i + k;
        let tag = &b[at + 2..];
        if tag.len() >= name.len() && tag[..name.len()].eq_ignore_ascii_case(name) {
            return at;
        }
        i = at + 2;
    }
    b.len()
}

/// The deepest nesting of the parsed page.
pub(super) fn depth(doc: &Html) -> usize {
    let (mut d, mut max) = (0usize, 0usize);
    for e in doc.tree.root().traverse() {
        match e {
            Edge::Open(_) => {
                d += 1;
                max = max.max(d);
            }
            Edge::Close(_) => d = d.saturating_sub(1),
        }
    }
    max
}

fn is_void(tag: &str) -> bool {
    matches!(
        tag,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

fn escape(s: &str, out: &mut String, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// The page as HTML again, with the tags of elements below `limit` levels dropped (their text kept).
pub(super) fn flatten(doc: &Html, limit: usize) -> String {
    let mut out = String::new();
    let mut d = 0usize;
    for e in doc.tree.root().traverse() {
        match e {
            Edge::Open(n) => {
                d += 1;
                match n.value() {
                    Node::Element(el) if d <= limit => {
                        out.push('<');
                        out.push_str(el.name());
                        for (k, v) in el.attrs() {
                            out.push(' ');
                            out.push_str(k);
                            out.push_str("=\"");
                            escape(v, &mut out, true);
                            out.push('"');
                        }
                        out.push('>');
                    }
                    // A dropped tag still separates words.
                    Node::Element(_) if !out.ends_with(' ') => out.push(' '),
                    Node::Element(_) => {}
                    Node::Text(t) => escape(t, &mut out, false),
                    _ => {}
                }
            }
            Edge::Close(n) => {
                if let Node::Element(el) = n.value()
                    && d <= limit
                    && !is_void(el.name())
                {
                    out.push_str("</");
                    out.push_str(el.name());
                    out.push('>');
                }
                d = d.saturating_sub(1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_scan_drops_only_tags_beyond_the_limit() {
        let deep =
            format!("<html><body>{}<p>words</p>{}</body></html>", "<div class='x>y'>".repeat(10), "</div>".repeat(10));
        let capped = cap_source(&deep, 4).unwrap();
        assert_eq!(capped.matches("<div").count(), 4);
        assert_eq!(capped.matches("</div>").count(), 4);
        assert!(capped.contains("<p>words</p>"));
        // Optional-end elements, void elements, comments and script text do not nest.
        let flat = format!(
            "<ul>{}</ul><!-- <div><div><div> --><script>'<div><div><div><div><div>'</script><br><img/>",
            "<li>x".repeat(50)
        );
        assert_eq!(cap_source(&flat, 4), None);
    }

    #[test]
    fn deep_pages_are_flattened_and_keep_their_words() {
        let html = format!(
            "<html><body>{}<p>the deep words &amp; more</p>{}</body></html>",
            "<div>".repeat(2000),
            "</div>".repeat(2000)
        );
        let doc = Html::parse_document(&html);
        assert!(depth(&doc) > 2000);
        let flat = flatten(&doc, 50);
        let again = Html::parse_document(&flat);
        assert!(depth(&again) <= 52, "{}", depth(&again));
        assert!(again.root_element().text().collect::<String>().contains("the deep words & more"));
    }
}
