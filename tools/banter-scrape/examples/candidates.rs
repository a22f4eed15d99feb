//! Each candidate extractor's text for every `.html` file in a folder, as JSONL `{"path", "name", "text"}`
//! (`make bench` scores them beside the vote on the article-extraction-benchmark).
//!
//! usage: cargo run --release -p banter-scrape --example candidates -- DIR

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: candidates DIR")?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    files.sort();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for path in files {
        let (html, _) = banter_scrape::extract::decode(&std::fs::read(&path)?, None);
        for (name, text) in banter_scrape::extract::candidates(&html, None) {
            let rec = serde_json::json!({"path": path.display().to_string(), "name": name, "text": text});
            writeln!(out, "{rec}")?;
        }
    }
    Ok(())
}
