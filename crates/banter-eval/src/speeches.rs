//! A play's dialogue as a multi-speaker chat (`NAME:` then the speech, blank-line separated, as
//! tinyshakespeare is laid out): the attribution check on real text, in the tests and `make bench`.

/// (speaker, speech) in the text's order.
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines();
        let Some(head) = lines.next() else { continue };
        let Some(name) = head.strip_suffix(':') else { continue };
        let body: Vec<&str> = lines.collect();
        if !name.is_empty() && !body.is_empty() && name.chars().all(|c| c.is_alphabetic() || c == ' ') {
            out.push((name.to_string(), body.join(" ")));
        }
    }
    out
}

/// The `n` speakers with the most speeches, each one's first `train` share for fitting and the rest held
/// out (as a chat's last messages are): `(names, fitting part by speaker, held-out (speaker index, speech))`.
#[allow(clippy::type_complexity)]
pub fn split(
    all: &[(String, String)],
    n: usize,
    train: f64,
) -> (Vec<String>, Vec<(String, Vec<String>)>, Vec<(usize, String)>) {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (s, _) in all {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    let mut top: Vec<(&str, usize)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    top.truncate(n);
    let mut fit = Vec::new();
    let mut held = Vec::new();
    for (i, (name, count)) in top.iter().enumerate() {
        let mine: Vec<&String> = all.iter().filter(|(a, _)| a == name).map(|(_, s)| s).collect();
        let cut = ((*count as f64) * train) as usize;
        fit.push((name.to_string(), mine[..cut].iter().map(|s| s.to_string()).collect()));
        held.extend(mine[cut..].iter().map(|s| (i, s.to_string())));
    }
    (top.iter().map(|t| t.0.to_string()).collect(), fit, held)
}
