//! A MediaWiki API mock that keeps the limits the real API documents: `list=random` gives at most 500
//! titles per request; TextExtracts gives one whole-article extract per request (`exlimit` applies only
//! with `exintro`, at most 20), leaving the other pages without an `extract` and a `continue`; more than
//! 50 page ids is an error. Article ids are drawn at random with repeats; every fourth one is a stub.

use std::sync::atomic::{AtomicU64, Ordering};

use tiny_http::{Header, Response};

type Resp = Response<std::io::Cursor<Vec<u8>>>;

fn json(v: serde_json::Value) -> Resp {
    Response::from_data(v.to_string().into_bytes())
        .with_header(Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap())
}

fn error(code: &str, info: &str) -> Resp {
    json(serde_json::json!({"error": {"code": code, "info": info}}))
}

fn article(id: u64) -> serde_json::Value {
    let title = format!("Article {id}");
    serde_json::json!({"pageid": id, "ns": 0, "title": title, "fullurl": format!("https://xx.wikipedia.org/wiki/Article_{id}")})
}

fn text(id: u64, intro: bool) -> String {
    if id % 4 == 3 {
        return "Stub.".into();
    }
    let lead = format!("Article {id} is about a topic of general interest. ").repeat(3);
    if intro { lead } else { format!("{lead}\n\n== History ==\n{}", "It has a long history. ".repeat(5)) }
}

/// Answers one API request.
pub fn answer(url: &str) -> Resp {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let u = url::Url::parse(&format!("http://mock{url}")).unwrap();
    let q = |k: &str| u.query_pairs().find(|(a, _)| a == k).map(|(_, v)| v.into_owned());
    if q("action").as_deref() != Some("query") || q("format").as_deref() != Some("json") {
        return error("badparams", "action=query&format=json expected");
    }
    let mut warnings = Vec::new();
    let mut out = serde_json::json!({"batchcomplete": true, "query": {}});
    if q("list").as_deref() == Some("random") {
        let asked = q("rnlimit").map_or(Ok(1), |l| if l == "max" { Ok(500) } else { l.parse::<usize>() });
        let Ok(mut n) = asked else { return error("badinteger", "rnlimit") };
        if n > 500 {
            warnings.push("rnlimit may not be over 500 (set to 500) for users.");
            n = 500;
        }
        // Random, with repeats of recent ids.
        let items: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let next = NEXT.fetch_add(1, Ordering::SeqCst);
                let id = if i % 5 == 4 && next > 3 { next - 3 } else { next };
                serde_json::json!({"id": id, "ns": 0, "title": format!("Article {id}")})
            })
            .collect();
        out["query"]["random"] = serde_json::json!(items);
        out["continue"] = serde_json::json!({"rncontinue": "0.5|0.6|1|0", "continue": "-||"});
    }
    let ids: Vec<u64> = match (q("pageids"), q("generator").as_deref()) {
        (Some(p), _) => p.split('|').filter_map(|x| x.parse().ok()).collect(),
        (None, Some("random")) => {
            let n: u64 = q("grnlimit").and_then(|l| l.parse().ok()).unwrap_or(1).min(500);
            (0..n).map(|_| NEXT.fetch_add(1, Ordering::SeqCst)).collect()
        }
        _ => Vec::new(),
    };
    if ids.len() > 50 {
        return error("toomanyvalues", "Too many values supplied for parameter \"pageids\". The limit is 50.");
    }
    if !ids.is_empty() {
        let props = q("prop").unwrap_or_default();
        let intro = q("exintro").is_some();
        let mut limit: usize = q("exlimit").map_or(Ok(1), |l| if l == "max" { Ok(20) } else { l.parse() }).unwrap_or(1);
        if limit > 20 {
            warnings.push("exlimit may not be over 20 (set to 20) for users.");
            limit = 20;
        }
        if !intro && limit > 1 {
            warnings.push("exlimit was too large for a whole article extracts request, lowered to 1.");
            limit = 1;
        }
        let pages: Vec<serde_json::Value> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let mut p = article(id);
                if props.contains("extracts") && i < limit {
                    p["extract"] = text(id, intro).into();
                }
                p
            })
            .collect();
        if props.contains("extracts") && ids.len() > limit {
            out["continue"] = serde_json::json!({"excontinue": limit, "continue": "||"});
            out.as_object_mut().unwrap().remove("batchcomplete");
        }
        out["query"]["pages"] = serde_json::json!(pages);
    }
    if !warnings.is_empty() {
        out["warnings"] = serde_json::json!({"extracts": {"warnings": warnings.join("\n")}});
    }
    json(out)
}
