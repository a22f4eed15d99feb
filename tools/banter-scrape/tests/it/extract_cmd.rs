//! `banter-scrape extract`: saved pages and folders of them → docs, partial failure exit codes, and one
//! regression test per extraction failure cause the public benchmark showed.

use std::path::Path;

use predicates::prelude::*;

use crate::{bin, docs, site};

fn write(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn paragraphs(topic: &str) -> String {
    (1..=4)
        .map(|i| {
            format!(
                "<p>{topic}, part {i}: the growers pick the youngest leaves by hand in the early morning, \
                 then steam or pan-fire them within hours so that they keep their colour and fresh taste.</p>"
            )
        })
        .collect()
}

/// A `pages` folder in `dir` holding the fixture page `fixture` saved as `name`.
fn pages_with(dir: &Path, fixture: &str, name: &str) -> std::path::PathBuf {
    let pages = dir.join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    std::fs::copy(site().join(fixture), pages.join(name)).unwrap();
    pages
}

#[test]
fn a_folder_of_saved_pages_and_texts_becomes_docs_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let pages = pages_with(dir.path(), "articles/green-tea.html", "b-tea.html");
    write(&pages, "a-notes.txt", "\u{feff}Notes on oolong.\nIt is partly oxidised.\n");
    write(&pages, "sub/c-fa.htm", &std::fs::read_to_string(site().join("articles/news.html")).unwrap());
    write(&pages, "logo.png", "not a page");
    write(&pages, ".backup.html", "<p>hidden files are not pages</p>");
    let out = bin().arg("extract").arg(&pages).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let d = docs(&out);
    let paths: Vec<&str> = d.iter().map(|x| x["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(paths[0].ends_with("a-notes.txt") && paths[1].ends_with("b-tea.html") && paths[2].ends_with("c-fa.htm"));
    assert_eq!(d[0]["text"], "Notes on oolong.\nIt is partly oxidised.");
    assert_eq!(d[1]["title"], "Green tea - Tea Notes");
    assert!(d[1]["text"].as_str().unwrap().contains("Camellia sinensis"), "{}", d[1]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 file(s) in the folders skipped"), "{err}");
}

#[test]
fn a_page_without_text_is_exit_1_unless_allow_partial_and_the_rest_is_written() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.html", &format!("<html><body><article>{}</article></body></html>", paragraphs("Tea")));
    write(dir.path(), "empty.html", "<html><body><nav><a href='/'>Home</a></nav></body></html>");
    let out_file = dir.path().join("docs.jsonl");
    let out = bin().arg("extract").arg(dir.path()).arg("-o").arg(&out_file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("empty.html: no main text found") && err.contains("1 of 2 page(s) failed"), "{err}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap().lines().count(), 1);
    let out = bin()
        .arg("extract")
        .arg(dir.path().join("good.html"))
        .arg(dir.path().join("empty.html"))
        .args(["--allow-partial", "--json", "-o"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["failed_by_reason"]["no main text found"], 1, "{r}");
    assert_eq!(r["counts"]["fetched"], 1, "{r}");
}

#[test]
fn stdin_missing_files_and_an_old_output_kept_when_nothing_gives_text() {
    let page = format!(
        "<html lang='de'><head><title>Tee</title></head><body><main>{}</main></body></html>",
        paragraphs("Tee")
    );
    let out = bin().args(["extract", "-"]).write_stdin(page).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let d = docs(&out);
    assert_eq!(
        (d[0]["title"].as_str(), d[0]["lang"].as_str(), d[0]["path"].as_str()),
        (Some("Tee"), Some("de"), Some("-"))
    );
    bin().args(["extract", "no/such/dir"]).assert().code(4).stderr(predicate::str::contains("no/such/dir"));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "empty.html", "<html><body></body></html>");
    let old = dir.path().join("old.jsonl");
    std::fs::write(&old, "{\"text\":\"keep me\"}\n").unwrap();
    bin()
        .arg("extract")
        .arg(dir.path().join("empty.html"))
        .arg("-o")
        .arg(&old)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("no page gave text"));
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "{\"text\":\"keep me\"}\n");
}

/// The benchmark's main failure: an article body inside containers whose classes carry boilerplate words
/// (`sidebar`, `widget`, `modal`, `ad`, `pagination`) was dropped whole. Each wrapper, in shapes sites use.
#[test]
fn article_bodies_inside_boilerplate_named_containers_are_kept() {
    let wrappers = [
        ("<div class='layout has-sidebar sidebar-right'><div class='content-col'>", "</div></div>"),
        ("<div id='main-widget-area'><section class='widget widget_text'>", "</section></div>"),
        ("<body class='modal-open'><div class='page'>", "</div>"),
        ("<div class='ad-free-wrapper'><div class='ad'>", "</div></div>"),
        ("<div class='pagination-container'><div class='paged-content'>", "</div></div>"),
    ];
    for (open, close) in wrappers {
        let html = format!(
            "<html><head><title>Sencha</title></head><body><nav><a href='/'>Home</a> <a href='/shop'>Shop</a></nav>\
             {open}<h1>Sencha</h1>{}{close}<footer>© Tea Inc. Privacy. Terms.</footer></body></html>",
            paragraphs("Sencha")
        );
        let ex = banter_scrape::extract::extract(&html, None);
        for i in 1..=4 {
            assert!(ex.text.contains(&format!("Sencha, part {i}:")), "{open}: part {i} lost: {:?}", ex.text);
        }
        assert!(!ex.text.contains("Privacy") && !ex.text.contains("Shop"), "{open}: {:?}", ex.text);
    }
}

/// A forum thread and a listing page (the weakest page types on the second benchmark): every post and
/// every item's text is kept.
#[test]
fn forum_posts_and_listing_items_are_all_kept() {
    let posts: String = ["ann", "bob", "cyrus", "dina"]
        .iter()
        .map(|who| {
            format!(
                "<div class='post' id='post-{who}'><div class='author'>{who}</div><div class='post-body'><p>{who} says: \
                 I steep my green tea at seventy degrees for two minutes and it is never bitter, try it.</p></div></div>"
            )
        })
        .collect();
    let html = format!(
        "<html><head><title>Brewing temperature - Tea Forum</title></head><body><header><a href='/'>Tea Forum</a></header>\
         <h1>Brewing temperature</h1><div class='thread'>{posts}</div><div class='pagination'><a href='?p=2'>2</a></div></body></html>"
    );
    let ex = banter_scrape::extract::extract(&html, None);
    for who in ["ann", "bob", "cyrus", "dina"] {
        assert!(ex.text.contains(&format!("{who} says")), "{who}'s post lost: {:?}", ex.text);
    }
    let items: String = (1..=6)
        .map(|i| {
            format!(
                "<li class='item'><h2><a href='/t/{i}'>Tea number {i}</a></h2><p>A loose-leaf tea from garden {i}, \
                 picked in spring and rolled by hand; it brews a clear, sweet cup.</p></li>"
            )
        })
        .collect();
    let html = format!(
        "<html><head><title>All teas</title></head><body><nav><a href='/'>Home</a></nav><h1>All teas</h1>\
         <ul class='products'>{items}</ul><footer>© Tea Inc.</footer></body></html>"
    );
    let ex = banter_scrape::extract::extract(&html, None);
    for i in 1..=6 {
        assert!(ex.text.contains(&format!("from garden {i},")), "item {i} lost: {:?}", ex.text);
    }
}

/// MTN Sails' flow: a folder of saved pages → docs → training pairs that name the file they came from.
#[test]
fn extracted_docs_become_samples_that_name_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let pages = pages_with(dir.path(), "articles/python-gil.html", "gil.html");
    let docs_file = dir.path().join("docs.jsonl");
    bin().arg("extract").arg(&pages).arg("-o").arg(&docs_file).assert().success();
    let out = bin().arg("to-samples").arg(&docs_file).args(["--mode", "pairs"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = docs(&out);
    assert_eq!(s.len(), 1);
    assert!(s[0]["source"].as_str().unwrap().ends_with("gil.html"), "{}", s[0]);
    assert!(s[0]["output"].as_str().unwrap().contains("GIL"), "{}", s[0]);
}

/// Hostile nesting: a page of 200,000 unclosed `<div>`s (1 MB) neither overflows an extractor's stack nor
/// stalls the parser; its text comes out once.
#[test]
fn a_page_nested_200000_deep_is_extracted() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "<html><body>{}<p>The only sentence of this page has words enough to count as text.</p></body></html>",
        "<div>".repeat(200_000)
    );
    write(dir.path(), "deep.html", &body);
    let out = bin().arg("extract").arg(dir.path().join("deep.html")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let d = docs(&out);
    assert_eq!(d[0]["text"].as_str().unwrap().matches("The only sentence").count(), 1, "{}", d[0]);
}
