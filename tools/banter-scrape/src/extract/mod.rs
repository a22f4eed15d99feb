//! Main-text extraction: the article, not the page.
//!
//! The text is what four well-kept extractors agree on ([`vote`]); banter's own readability-style rules
//! ([`heuristic`]) are the last fallback, for a page where all four find nothing. Title, language and links
//! are read here with `scraper`. The page's character set is decided in [`charset`].

mod charset;
mod flatten;
mod heuristic;
mod vote;

pub use charset::{decode, meta_charset};
pub use heuristic::squash;

use std::borrow::Cow;

use scraper::{Html, Selector};

/// What was extracted from one page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extracted {
    /// `<title>` (or `og:title`, or the first `<h1>`).
    pub title: Option<String>,
    /// `<html lang>`.
    pub lang: Option<String>,
    /// The main text, one block per line.
    pub text: String,
    /// Links found in the page (absolute resolution is the caller's job).
    pub links: Vec<String>,
    /// Which rule gave the text (`vote on rs-trafilatura`, …, `banter heuristic`, `none`).
    pub method: &'static str,
}

/// Extracts title, language, main text and links from an HTML page; `url` is the page's address when known.
pub fn extract(html: &str, url: Option<&str>) -> Extracted {
    let (html, doc) = prepared(html);
    let html = html.as_ref();
    let sel = |s: &str| Selector::parse(s).expect("static selector");
    let title = doc
        .select(&sel("title"))
        .next()
        .map(|t| squash(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty())
        .or_else(|| {
            doc.select(&sel("meta[property='og:title']")).next().and_then(|m| m.value().attr("content")).map(squash)
        })
        .or_else(|| doc.select(&sel("h1")).next().map(|h| squash(&h.text().collect::<String>())));
    let lang = doc
        .select(&sel("html"))
        .next()
        .and_then(|h| h.value().attr("lang"))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty());
    let links = doc.select(&sel("a[href]")).filter_map(|a| a.value().attr("href")).map(str::to_string).collect();
    let (voted, method) = vote::Candidates::of(html, url).decide();
    // A text made only of the page's link texts (a menu, a "Home" link) is no main text.
    let anchors: std::collections::HashSet<String> =
        doc.select(&sel("a")).map(|a| squash(&a.text().collect::<String>())).filter(|t| !t.is_empty()).collect();
    let only_links = |t: &str| t.lines().all(|l| anchors.contains(&squash(l)));
    let (text, method) = match tidy(&voted) {
        t if !t.is_empty() && !only_links(&t) => (t, method),
        // The last fallback falls back to the whole body when it finds no paragraph: a few words there are
        // a menu or a button, not a text a reader would see.
        _ => match tidy(&heuristic::main_text(&doc)) {
            t if t.split_whitespace().count() >= 10 && !only_links(&t) => (t, "banter heuristic"),
            _ => (String::new(), "none"),
        },
    };
    Extracted { title, lang, text, links, method }
}

/// Each candidate extractor's own text for a page, by name (benchmarks and tests compare them with the vote).
pub fn candidates(html: &str, url: Option<&str>) -> Vec<(&'static str, String)> {
    let (html, doc) = prepared(html);
    let c = vote::Candidates::of(&html, url);
    let own = tidy(&heuristic::main_text(&doc));
    vec![
        ("rs-trafilatura", c.rs_trafilatura),
        ("trafilatura", c.trafilatura),
        ("dom_smoothie", c.dom_smoothie),
        ("readability", c.readability),
        ("banter heuristic", own),
    ]
}

/// The page parsed, and flattened first when it nests deeper than any extractor's stack allows.
fn prepared(html: &str) -> (Cow<'_, str>, Html) {
    let html = match flatten::cap_source(html, flatten::SOURCE_DEPTH) {
        Some(capped) => Cow::Owned(capped),
        None => Cow::Borrowed(html),
    };
    let doc = Html::parse_document(&html);
    if flatten::depth(&doc) <= flatten::MAX_DEPTH {
        return (html, doc);
    }
    let flat = flatten::flatten(&doc, flatten::MAX_DEPTH);
    let doc = Html::parse_document(&flat);
    (Cow::Owned(flat), doc)
}

/// One block per line: lines trimmed, blank lines and a line repeating the one before dropped.
fn tidy(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if out.last() != Some(&l) {
            out.push(l);
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_language_links_and_the_article_text() {
        let para = |s: &str| format!("<p>{s} {}</p>", "It is brewed at eighty degrees for three minutes. ".repeat(3));
        let html = format!(
            r#"<html lang="en"><head><title>Green tea</title><script>var x=1;</script></head><body>
            <header><nav><a href="/">Home</a> <a href="/about">About</a></nav></header>
            <div class="cookie-banner">We use cookies. <button>Accept</button></div>
            <article><h1>Green tea</h1>{}{}{}</article>
            <footer>© 2026 Tea Inc. All rights reserved.</footer></body></html>"#,
            para("Green tea is made from leaves that are not withered and oxidised."),
            para("It originated in China, and spread to other countries in East Asia."),
            para("Sencha is the most popular kind in Japan."),
        );
        let e = extract(&html, Some("https://tea.example/green"));
        assert_eq!(e.title.as_deref(), Some("Green tea"));
        assert_eq!(e.lang.as_deref(), Some("en"));
        assert!(e.links.contains(&"/about".to_string()));
        assert!(e.text.contains("Green tea is made from leaves") && e.text.contains("Sencha is the most"), "{e:?}");
        for junk in ["cookies", "Home", "All rights reserved", "var x"] {
            assert!(!e.text.contains(junk), "{junk} in {:?}", e.text);
        }
        assert!(e.method.starts_with("vote"), "{}", e.method);
    }

    #[test]
    fn the_same_page_gives_the_same_text_every_time() {
        // Two equal-scoring candidates: ties go to document order, not to a hash map's iteration order.
        let post =
            |who: &str| format!("<div class='post'><p>{who}: {}</p></div>", "a reply of some length, ".repeat(6));
        let html = format!("<html><body><div>{}</div><div>{}</div></body></html>", post("ann"), post("bob"));
        let first = extract(&html, None).text;
        for _ in 0..5 {
            assert_eq!(extract(&html, None).text, first);
        }
    }

    #[test]
    fn tidy_drops_blank_and_repeated_lines() {
        assert_eq!(tidy("  a \n\n a\n b\n"), "a\nb");
    }
}
