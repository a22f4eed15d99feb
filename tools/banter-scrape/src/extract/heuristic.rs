//! banter's own main-text rules, the last fallback of [`super::extract`].
//!
//! Boilerplate elements are dropped (script, style, nav, header/footer outside the article, aside, forms,
//! cookie banners and share widgets by class/id); the main container is found readability-style —
//! paragraphs of 25+ characters score `1 + commas + min(len/100, 3)`, given in full to their parent and half
//! to their grandparent, containers get tag priors, and scores are scaled by `1 − link density`; siblings of
//! the best container that score at least `max(10, 0.2 × best)` join it. The container is then rendered as
//! text: headings, paragraphs, list items (`- `), code blocks kept verbatim, table rows as cells joined by
//! ` | `; link-heavy lists (related posts, tag clouds) are dropped.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Node, Selector};

const DROP_TAGS: &[&str] = &[
    "script", "style", "noscript", "svg", "nav", "aside", "form", "iframe", "button", "select", "template", "canvas",
    "object", "embed", "input", "textarea", "dialog", "menu",
];

static BOILERPLATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(^|[-_ ])(cookie|consent|gdpr|banner|newsletter|subscribe|share|sharing|social|sidebar|breadcrumbs?|advert|ads|ad|promo|popup|modal|comments?|related|footer|masthead|navbar|nav|menu|skip|signup|login|pagination|pager|tags|widget)([-_ ]|$)",
    )
    .expect("boilerplate regex")
});

static CONTENT_HINT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(article|body|content|entry|main|page|post|text|blog|story)").expect("content regex")
});

fn is_block(tag: &str) -> bool {
    matches!(
        tag,
        "p" | "div"
            | "section"
            | "article"
            | "main"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "ul"
            | "ol"
            | "li"
            | "pre"
            | "blockquote"
            | "table"
            | "tr"
            | "td"
            | "th"
            | "dl"
            | "dt"
            | "dd"
            | "figure"
            | "figcaption"
            | "header"
            | "footer"
            | "br"
            | "hr"
            | "address"
            | "details"
            | "summary"
            | "body"
            | "thead"
            | "tbody"
    )
}

/// The main text of a parsed page by banter's own readability-style rules: one block per line (untidied).
pub(super) fn main_text(doc: &Html) -> String {
    let sel = Selector::parse("body").expect("static selector");
    let body = doc.select(&sel).next().unwrap_or_else(|| doc.root_element());
    let main = find_main(body);
    let mut lines = Vec::new();
    for container in &main {
        render(*container, &mut lines, false);
    }
    // Repeated lines are dropped by the caller's `tidy`.
    lines.join("\n")
}

/// Collapses whitespace runs to one space and trims.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn attr_hint(e: &ElementRef<'_>) -> String {
    let v = e.value();
    format!("{} {} {}", v.attr("class").unwrap_or(""), v.attr("id").unwrap_or(""), v.attr("role").unwrap_or(""))
}

/// True for elements that are never content.
fn is_dropped(e: &ElementRef<'_>, inside_article: bool) -> bool {
    let tag = e.value().name();
    if DROP_TAGS.contains(&tag) {
        return true;
    }
    if (tag == "header" || tag == "footer") && !inside_article {
        return true;
    }
    if e.value().attr("hidden").is_some() || e.value().attr("aria-hidden") == Some("true") {
        return true;
    }
    if matches!(e.value().attr("role"), Some("navigation" | "banner" | "contentinfo" | "complementary" | "dialog")) {
        return true;
    }
    let hint = attr_hint(e);
    if hint.trim().is_empty() || matches!(tag, "body" | "html" | "main" | "article") {
        return false;
    }
    BOILERPLATE.is_match(&hint) && !CONTENT_HINT.is_match(e.value().attr("id").unwrap_or(""))
}

fn visible_text(e: ElementRef<'_>, out: &mut String, links: &mut usize, in_link: bool) {
    for child in e.children() {
        match child.value() {
            Node::Text(t) => {
                out.push_str(t);
                if in_link {
                    *links += t.trim().chars().count();
                }
            }
            Node::Element(_) => {
                if let Some(ce) = ElementRef::wrap(child)
                    && !is_dropped(&ce, true)
                {
                    visible_text(ce, out, links, in_link || ce.value().name() == "a");
                }
            }
            _ => {}
        }
    }
}

fn text_stats(e: ElementRef<'_>) -> (String, f64) {
    let mut s = String::new();
    let mut link_chars = 0;
    visible_text(e, &mut s, &mut link_chars, false);
    let s = squash(&s);
    let n = s.chars().count();
    let density = if n == 0 { 0.0 } else { (link_chars as f64 / n as f64).min(1.0) };
    (s, density)
}

/// The element(s) holding the main content.
fn find_main(body: ElementRef<'_>) -> Vec<ElementRef<'_>> {
    // A single <article> or <main> with real text is the answer.
    for tag in ["article", "main"] {
        let sel = Selector::parse(tag).expect("static selector");
        let found: Vec<ElementRef<'_>> = body.select(&sel).collect();
        if found.len() == 1 {
            let (t, d) = text_stats(found[0]);
            if t.chars().count() >= 250 && d < 0.5 {
                return found;
            }
        }
    }
    // Readability scoring. Candidates are visited in node order (a BTreeMap) and a later one must score
    // strictly higher, so equal scores go to the first in the document on every run.
    let mut scores: BTreeMap<ego_id::Id, (f64, ElementRef<'_>)> = BTreeMap::new();
    score_paragraphs(body, &mut scores, false);
    let mut best: Option<(f64, ElementRef<'_>)> = None;
    for (_, (score, e)) in scores.iter() {
        let (_, density) = text_stats(*e);
        let s = score * (1.0 - density);
        if best.is_none_or(|(b, _)| s > b) {
            best = Some((s, *e));
        }
    }
    let Some((top, top_el)) = best else { return vec![body] };
    let threshold = (top * 0.2).max(10.0);
    let mut out = Vec::new();
    if let Some(parent) = top_el.parent().and_then(ElementRef::wrap) {
        for sib in parent.children().filter_map(ElementRef::wrap) {
            if sib.id() == top_el.id() {
                out.push(sib);
                continue;
            }
            if is_dropped(&sib, false) {
                continue;
            }
            let s = scores.get(&ego_id::of(&sib)).map_or(0.0, |(s, _)| *s);
            let (text, density) = text_stats(sib);
            let para_ok = sib.value().name() == "p" && text.chars().count() > 80 && density < 0.25;
            if s * (1.0 - density) >= threshold || para_ok {
                out.push(sib);
            }
        }
    }
    if out.is_empty() {
        out.push(top_el);
    }
    // Content spread over several siblings (forum posts, sections): take their parent, so the heading
    // and text between them come along (boilerplate children are still dropped when rendering).
    if out.len() > 1
        && let Some(parent) = top_el.parent().and_then(ElementRef::wrap)
        && !matches!(parent.value().name(), "body" | "html")
        && text_stats(parent).1 < 0.5
    {
        return vec![parent];
    }
    out
}

/// Node ids as map keys (ordered as the parser created the nodes: document order).
mod ego_id {
    use scraper::ElementRef;
    /// An element's id in its tree.
    pub type Id = ego_tree::NodeId;
    /// The id of an element.
    pub fn of(e: &ElementRef<'_>) -> Id {
        e.id()
    }
}

fn prior(tag: &str) -> f64 {
    match tag {
        "div" | "article" | "main" | "section" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    }
}

fn score_paragraphs<'a>(e: ElementRef<'a>, scores: &mut BTreeMap<ego_id::Id, (f64, ElementRef<'a>)>, in_article: bool) {
    for child in e.children().filter_map(ElementRef::wrap) {
        if is_dropped(&child, in_article) {
            continue;
        }
        let tag = child.value().name();
        let inner_article = in_article || tag == "article" || tag == "main";
        if matches!(tag, "p" | "pre" | "td" | "li" | "blockquote") || (tag == "div" && !has_block_child(child)) {
            let (text, _) = text_stats(child);
            let len = text.chars().count();
            if len >= 25 {
                let commas = text.matches([',', '،', '，']).count() as f64;
                let score = 1.0 + commas + (len as f64 / 100.0).min(3.0);
                let hint_bonus = |el: ElementRef<'a>| {
                    let h = attr_hint(&el);
                    let mut s = prior(el.value().name());
                    if CONTENT_HINT.is_match(&h) {
                        s += 25.0;
                    }
                    s
                };
                if let Some(parent) = child.parent().and_then(ElementRef::wrap) {
                    let base = hint_bonus(parent);
                    scores.entry(parent.id()).or_insert((base, parent)).0 += score;
                    if let Some(gp) = parent.parent().and_then(ElementRef::wrap) {
                        let base = hint_bonus(gp);
                        scores.entry(gp.id()).or_insert((base, gp)).0 += score / 2.0;
                    }
                }
            }
        }
        score_paragraphs(child, scores, inner_article);
    }
}

fn has_block_child(e: ElementRef<'_>) -> bool {
    e.children().filter_map(ElementRef::wrap).any(|c| is_block(c.value().name()))
}

/// Renders an element as lines of text.
fn render(e: ElementRef<'_>, lines: &mut Vec<String>, in_article: bool) {
    let tag = e.value().name();
    if is_dropped(&e, in_article || matches!(tag, "article" | "main")) {
        return;
    }
    let in_article = in_article || matches!(tag, "article" | "main");
    match tag {
        "pre" => {
            let code: String = e.text().collect();
            let code = code.trim_matches('\n');
            if !code.trim().is_empty() {
                lines.extend(code.lines().map(|l| l.trim_end().to_string()));
            }
        }
        "ul" | "ol" => {
            let (_, density) = text_stats(e);
            if density > 0.6 {
                return; // a list of links: navigation, related posts, tags
            }
            for li in e.children().filter_map(ElementRef::wrap).filter(|c| c.value().name() == "li") {
                let mut item_lines = Vec::new();
                render_inline_block(li, &mut item_lines, in_article);
                for (i, l) in item_lines.into_iter().enumerate() {
                    lines.push(if i == 0 { format!("- {l}") } else { l });
                }
            }
        }
        "table" => {
            for tr in e.select(&Selector::parse("tr").expect("static selector")) {
                let cells: Vec<String> = tr
                    .children()
                    .filter_map(ElementRef::wrap)
                    .filter(|c| matches!(c.value().name(), "td" | "th"))
                    .map(|c| squash(&c.text().collect::<String>()))
                    .collect();
                if cells.iter().any(|c| !c.is_empty()) {
                    lines.push(cells.join(" | "));
                }
            }
        }
        _ => render_inline_block(e, lines, in_article),
    }
}

/// Renders a block whose children may be inline (text, links, emphasis) or blocks.
fn render_inline_block(e: ElementRef<'_>, lines: &mut Vec<String>, in_article: bool) {
    let mut buf = String::new();
    let flush = |buf: &mut String, lines: &mut Vec<String>| {
        let s = squash(buf);
        if !s.is_empty() {
            lines.push(s);
        }
        buf.clear();
    };
    for child in e.children() {
        match child.value() {
            Node::Text(t) => buf.push_str(t),
            Node::Element(el) => {
                let Some(ce) = ElementRef::wrap(child) else { continue };
                if is_dropped(&ce, in_article) {
                    continue;
                }
                let name = el.name();
                if name == "br" {
                    flush(&mut buf, lines);
                } else if is_block(name) || name == "pre" {
                    flush(&mut buf, lines);
                    render(ce, lines, in_article);
                } else {
                    let mut s = String::new();
                    let mut l = 0;
                    visible_text(ce, &mut s, &mut l, false);
                    buf.push_str(&s);
                }
            }
            _ => {}
        }
    }
    flush(&mut buf, lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn article_with_boilerplate() {
        let html = r#"<html lang="en"><head><title>Green tea</title><script>var x=1;</script></head><body>
            <header><nav><a href="/">Home</a> <a href="/about">About</a></nav></header>
            <div class="cookie-banner">We use cookies. <button>Accept</button></div>
            <div id="content"><h1>Green tea</h1>
              <p>Green tea is made from the leaves of Camellia sinensis, which are not withered and oxidised.</p>
              <p>It originated in China, and its production has spread to other countries in East Asia.</p>
              <ul><li>Sencha, the most popular in Japan.</li><li>Gunpowder, rolled into pellets.</li></ul>
              <pre>brew(tea, 80)
  wait(3)</pre>
              <table><tr><th>Kind</th><th>Temp</th></tr><tr><td>Sencha</td><td>80</td></tr></table>
            </div>
            <aside>Related: <a href="/a">A</a></aside>
            <footer>© 2026 Tea Inc. All rights reserved.</footer></body></html>"#;
        assert_eq!(
            main_text(&Html::parse_document(html)),
            "Green tea\nGreen tea is made from the leaves of Camellia sinensis, which are not withered and oxidised.\n\
             It originated in China, and its production has spread to other countries in East Asia.\n\
             - Sencha, the most popular in Japan.\n- Gunpowder, rolled into pellets.\nbrew(tea, 80)\n  wait(3)\n\
             Kind | Temp\nSencha | 80"
        );
    }
}
