//! The HTML report, opened in headless Chromium (Debian's chromium, driven by playwright-core): every plot is
//! drawn. Skipped when Chromium or the node module is missing, unless `BANTER_REQUIRE_BROWSER=1`.

use std::path::Path;
use std::process::Command;

use crate::{bin, fixture, run_ok};

#[test]
fn the_html_report_is_self_contained_and_opens_with_its_plots() {
    let f = fixture();
    let page = f.root.join("report.html");
    run_ok(
        bin()
            .arg("persona")
            .arg(&f.base)
            .arg("--adapter")
            .arg(&f.sara)
            .arg("--messages")
            .arg(&f.messages)
            .args(["--persona", "Sara", "--samples", "8", "--threads", "1", "-q", "--html"])
            .arg(&page),
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("data-plot=\"attribution\""));
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
        "self-contained, no script"
    );
    // A reply containing markup is shown as text.
    assert!(!html.contains("<img"), "nothing from the chat is rendered as markup");

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !(Path::new(&chromium).exists() && dir.join("node_modules/playwright-core").exists()) {
        assert!(
            std::env::var("BANTER_REQUIRE_BROWSER").is_err(),
            "the browser test is required but {chromium} or playwright-core is missing"
        );
        eprintln!(
            "skipping the browser part: no {chromium} or tests/browser/node_modules (make test installs the module)"
        );
        return;
    }
    let plots = ["attribution", "style", "length-words", "length-chars", "shares", "rates", "loss"];
    let out = Command::new("node")
        .arg("report.mjs")
        .arg(&page)
        .args(plots)
        .current_dir(&dir)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
    assert_eq!(v["title"], "banter-eval persona: Sara");
    for p in plots {
        assert!(v["plots"][p]["drawn"].as_u64().unwrap() > 0, "{p}: {v}");
    }
    assert_eq!(v["sample_rows"], 8);
    assert_eq!(v["failed"].as_array().unwrap().len(), 0, "no request left the page");
}
