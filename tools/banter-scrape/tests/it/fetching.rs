//! fetch / crawl / wikipedia against the local fixture site.

use predicates::prelude::*;

use crate::{bin, docs, server};

#[test]
fn fetch_writes_docs_and_lists_failures() {
    let s = server::start();
    let urls: Vec<String> = [
        "/articles/green-tea.html",
        "/missing.html",
        "/redirect",
        "/private/secret.html",
        "/image.png",
        "/fa/persian.html",
    ]
    .iter()
    .map(|p| format!("{}{p}", s.base))
    .collect();
    let out = bin().arg("fetch").args(&urls).args(["--allow-private", "--delay", "0"]).output().unwrap();
    // Some pages failed: exit 1, with what did work written.
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let d = docs(&out);
    assert_eq!(d.len(), 3, "{d:?}");
    assert_eq!(d[0]["title"], "Green tea - Tea Notes");
    assert_eq!(d[0]["status"], 200);
    assert_eq!(d[0]["lang"], "en");
    assert!(d[0]["fetched_at"].as_str().unwrap().ends_with('Z'));
    // The redirect lands on the article and reports the final URL.
    assert!(d[1]["url"].as_str().unwrap().ends_with("/articles/green-tea.html"));
    assert_eq!(d[2]["lang"], "fa");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.html (404): HTTP 404"), "{err}");
    // Obeying robots.txt is not a failure: the page is reported as skipped.
    assert!(err.contains("skipped (robots.txt): ") && err.contains("secret.html: disallowed by robots.txt"), "{err}");
    assert!(err.contains("image.png (200): not HTML (image/png)"), "{err}");
    assert!(err.contains("3 page(s) fetched, 2 failed"), "{err}");
    assert!(err.contains("2 of 5 page(s) failed") && err.contains("--allow-partial"), "{err}");
    // --allow-partial: exit 0; the report counts the failures by reason.
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("fetch")
        .args(&urls)
        .args(["--allow-private", "--delay", "0", "--allow-partial", "--json", "-o"])
        .arg(dir.path().join("docs.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = &r["failed_by_reason"];
    assert_eq!((by["HTTP 404"].as_u64(), by["disallowed by robots.txt"].as_u64()), (Some(1), None), "{r}");
    assert_eq!(by["not HTML (image/png)"], 1, "{r}");
    assert_eq!(r["counts"]["skipped_by_robots"], 1, "{r}");
}

#[test]
fn loopback_is_refused_without_allow_private_and_nothing_fetched_is_exit_4() {
    let s = server::start();
    bin()
        .args(["fetch", &format!("{}/articles/green-tea.html", s.base), "--delay", "0"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("non-public address 127.0.0.1"))
        .stderr(predicate::str::contains("no page could be fetched"));
    // Every other spelling of loopback: IPv4-mapped and -compatible IPv6, a decimal integer, a name.
    let port = s.base.rsplit(':').next().unwrap();
    for host in ["[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]", "[::1]", "2130706433", "localhost"] {
        bin()
            .args(["fetch", &format!("http://{host}:{port}/articles/green-tea.html"), "--delay", "0"])
            .assert()
            .code(4)
            .stderr(predicate::str::contains("non-public address"));
    }
    assert!(s.hits.lock().unwrap().is_empty(), "a refused address was contacted");
    // A run that fetched nothing leaves an existing output as it was.
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("k.jsonl");
    std::fs::write(&keep, "keep\n").unwrap();
    bin().args(["fetch", "http://127.0.0.1:9/", "-o"]).arg(&keep).assert().code(4);
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "keep\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temp file was left");
    bin()
        .args(["fetch", "ftp://example.org/x"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("only http and https"));
}

#[test]
fn five_redirects_are_followed_and_a_sixth_refused() {
    let s = server::start();
    let run = |hops: usize| {
        bin().args(["fetch", "--allow-private", "--delay", "0", &format!("{}/hops/{hops}", s.base)]).output().unwrap()
    };
    let five = run(5);
    assert_eq!(five.status.code(), Some(0), "{}", String::from_utf8_lossy(&five.stderr));
    assert!(docs(&five)[0]["url"].as_str().unwrap().ends_with("/articles/green-tea.html"));
    let six = run(6);
    assert_eq!(six.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&six.stderr).contains("more than 5 redirects"));
}

#[test]
fn the_timeout_covers_a_trickling_body() {
    let s = server::start();
    let started = std::time::Instant::now();
    let out = bin()
        .args(["fetch", "--allow-private", "--delay", "0", "--timeout", "1", "--retries", "0"])
        .arg(format!("{}/trickle", s.base))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"), "{}", String::from_utf8_lossy(&out.stderr));
    // The body would take a minute; the deadline (plus one read) ends it long before.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn retry_after_timeouts_caps_and_redirect_loops() {
    let s = server::start();
    let out = bin()
        .args(["fetch", "--allow-private", "--delay", "0", "--timeout", "1", "--max-bytes", "1000000", "--json", "-o"])
        .arg(tempfile::NamedTempFile::new().unwrap().path())
        .args([
            format!("{}/flaky", s.base),
            format!("{}/slow", s.base),
            format!("{}/big", s.base),
            format!("{}/redirect-loop", s.base),
        ])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["counts"]["fetched"], 1, "503 then 200 after Retry-After: {r}");
    let reasons: Vec<String> =
        r["failures"].as_array().unwrap().iter().map(|f| f["reason"].as_str().unwrap().to_string()).collect();
    assert!(reasons[0].contains("timed out"), "{reasons:?}");
    assert!(reasons[1].contains("cap"), "{reasons:?}");
    assert!(reasons[2].contains("redirect"), "{reasons:?}");
}

#[test]
fn crawl_is_breadth_first_same_host_obeys_robots_and_stops_on_loops() {
    let s = server::start();
    let out = bin()
        .args([
            "crawl",
            &format!("{}/", s.base),
            "--allow-private",
            "--delay",
            "0",
            "--max-pages",
            "20",
            "--max-depth",
            "3",
        ])
        .output()
        .unwrap();
    // The site has a redirect loop and a page robots.txt disallows. The start page was fetched, so the crawl
    // succeeds: the loop is a broken link and the disallowed page a skip, both reported, neither a failure.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("broken link: ") && err.contains("skipped (robots.txt): "), "{err}");
    assert!(!err.contains("--allow-partial"), "{err}");
    let urls: Vec<String> = docs(&out).iter().map(|d| d["url"].as_str().unwrap().replace(&s.base, "")).collect();
    assert_eq!(urls[0], "/");
    for want in [
        "/articles/green-tea.html",
        "/articles/python-gil.html",
        "/forum/thread.html",
        "/fa/persian.html",
        "/loop/a.html",
        "/loop/b.html",
    ] {
        assert!(urls.contains(&want.to_string()), "{want} not crawled: {urls:?}");
    }
    assert!(!urls.iter().any(|u| u.contains("private")), "robots.txt ignored: {urls:?}");
    assert_eq!(urls.iter().filter(|u| u.contains("loop/a")).count(), 1, "loop fetched twice");
    let hits = s.hits.lock().unwrap().clone();
    assert_eq!(hits.iter().filter(|h| *h == "/robots.txt").count(), 1, "robots.txt read once per host");
    // --include narrows, --max-pages stops.
    let out = bin()
        .args([
            "crawl",
            &format!("{}/", s.base),
            "--allow-private",
            "--delay",
            "0",
            "--max-pages",
            "2",
            "--include",
            "articles|/$",
        ])
        .output()
        .unwrap();
    assert_eq!(docs(&out).len(), 2);
}

#[test]
fn delay_spaces_requests_to_one_host() {
    let s = server::start();
    let t = std::time::Instant::now();
    bin()
        .args(["fetch", "--allow-private", "--delay", "0.3", "-q"])
        .args([format!("{}/loop/a.html", s.base), format!("{}/loop/b.html", s.base), format!("{}/loop/a.html", s.base)])
        .assert()
        .success();
    // robots.txt + 3 pages, each at least 0.3 s after the previous request.
    assert!(t.elapsed().as_secs_f64() >= 0.9);
}

#[test]
fn wikipedia_random_gives_n_articles_from_an_api_with_one_full_extract_per_request() {
    let s = server::start();
    let out = bin()
        .args(["wikipedia", "--random", "25", "--lang", "xx", "--allow-private", "--delay", "0", "--endpoint"])
        .arg(format!("{}/w/api.php", s.base))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let d = docs(&out);
    assert_eq!(d.len(), 25, "{err}");
    let titles: std::collections::HashSet<&str> = d.iter().map(|x| x["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 25, "no article twice");
    assert!(
        d.iter().all(|x| x["text"].as_str().unwrap().contains("== History ==") && x["lang"] == "xx"),
        "whole articles"
    );
    assert!(d[0]["url"].as_str().unwrap().starts_with("https://xx.wikipedia.org/wiki/Article_"));
    assert!(err.contains("under 100 characters"), "stubs are skipped and said: {err}");
    // One extract per request: never more pages per extracts request than the API answers.
    let hits = s.hits.lock().unwrap();
    let per_request =
        |h: &&String| h.split("pageids=").nth(1).map_or(0, |p| p.split('&').next().unwrap().split("%7C").count());
    assert!(hits.iter().filter(|h| h.contains("prop=extracts")).all(|h| per_request(&h) == 1), "{hits:?}");
}

#[test]
fn wikipedia_intro_only_takes_twenty_per_request() {
    let s = server::start();
    let out = bin()
        .args(["wikipedia", "--random", "25", "--intro-only", "--min-chars", "50", "--allow-private", "--delay", "0"])
        .arg("--endpoint")
        .arg(format!("{}/w/api.php", s.base))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let d = docs(&out);
    assert_eq!(d.len(), 25);
    assert!(d.iter().all(|x| !x["text"].as_str().unwrap().contains("History")), "lead sections only");
    let extract_requests = s.hits.lock().unwrap().iter().filter(|h| h.contains("prop=extracts")).count();
    assert!(extract_requests <= 4, "{extract_requests} requests for 25 intros");
}

/// A crawl whose start page was fetched succeeds whatever the links it found do (404s are counted as broken
/// links in `--json`); a start page that fails is the crawl's failure.
#[test]
fn a_crawl_fails_only_for_its_start_page() {
    let s = server::start();
    let dir = tempfile::tempdir().unwrap();
    let crawl = |start: &str| {
        bin()
            .args(["crawl", &format!("{}{start}", s.base), "--allow-private", "--delay", "0", "--max-pages", "20"])
            .args(["--max-depth", "3", "--json", "-q", "-o"])
            .arg(dir.path().join("docs.jsonl"))
            .output()
            .unwrap()
    };
    let out = crawl("/");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["counts"]["broken_links"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["counts"]["skipped_by_robots"], 1, "{r}");
    assert_eq!(r["counts"]["failed"], 0, "{r}");
    let out = crawl("/missing.html");
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn fetch_shards_concatenate_to_the_one_job_docs() {
    let s = server::start();
    let urls: Vec<String> = ["/articles/green-tea.html", "/fa/persian.html", "/redirect", "/articles/green-tea.html"]
        .iter()
        .map(|p| format!("{}{p}", s.base))
        .collect();
    let run = |extra: &[&str]| {
        let out =
            bin().arg("fetch").args(&urls).args(["--allow-private", "--delay", "0"]).args(extra).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The fetch time differs between runs; everything else is the same.
        docs(&out).into_iter().map(|mut d| {
            d.as_object_mut().unwrap().remove("fetched_at");
            d
        })
    };
    let want: Vec<_> = run(&[]).collect();
    assert_eq!(want.len(), 4);
    for n in [2, 3, 4, 6] {
        let got: Vec<_> = (0..n).flat_map(|i| run(&["--shard", &format!("{i}/{n}")]).collect::<Vec<_>>()).collect();
        assert_eq!(got, want, "{n} shards");
    }
    bin().arg("fetch").args(&urls).args(["--shard", "2/2"]).assert().code(2);
}
