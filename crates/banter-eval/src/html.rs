//! One self-contained HTML page per report: the figures, inline SVG plots (no script, no network) and the
//! sample contexts with real and generated replies side by side.

use std::fmt::Write;

use crate::loss::LossResult;
use crate::persona::PersonaReport;

const COLORS: [&str; 6] = ["#555", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}}\
h1{{font-size:1.5em}}h2{{font-size:1.15em;margin-top:2em}}table{{border-collapse:collapse;margin:.5em 0}}\
td,th{{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}}td.n{{text-align:right}}\
.legend span{{display:inline-block;margin-right:1em}}.sw{{display:inline-block;width:.9em;height:.9em;margin-right:.3em}}\
.ctx{{color:#666;white-space:pre-wrap}}.real{{white-space:pre-wrap}}.gen{{white-space:pre-wrap}}svg.plot{{display:block;margin:.5em 0}}\
</style></head><body>\n<h1>{}</h1>\n{}</body></html>\n",
        esc(title),
        esc(title),
        body
    )
}

/// Grouped horizontal bars: one group per label, one bar per series (values 0..max).
fn bars(id: &str, labels: &[String], series: &[(String, Vec<f64>)], max: f64, fmt: fn(f64) -> String) -> String {
    let (bar_h, gap, left, width) = (14.0, 10.0, 170.0, 520.0);
    let group_h = bar_h * series.len() as f64 + gap;
    let h = group_h * labels.len() as f64 + 10.0;
    let mut s = format!(
        "<svg class=\"plot\" data-plot=\"{id}\" width=\"{}\" height=\"{h}\" role=\"img\" aria-label=\"{id}\">",
        left + width + 80.0
    );
    for (i, l) in labels.iter().enumerate() {
        let y0 = i as f64 * group_h + 5.0;
        let _ = write!(s, "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>", y0 + bar_h, esc(l));
        for (j, (_, vals)) in series.iter().enumerate() {
            let v = vals.get(i).copied().unwrap_or(0.0);
            let w = if max > 0.0 { (v / max).clamp(0.0, 1.0) * width } else { 0.0 };
            let y = y0 + j as f64 * bar_h;
            let _ = write!(
                s,
                "<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
                bar_h - 2.0,
                COLORS[j % COLORS.len()],
                esc(&series[j].0),
                left + w + 4.0,
                y + bar_h - 3.0,
                fmt(v)
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn legend(names: &[String]) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for (j, n) in names.iter().enumerate() {
        let _ =
            write!(s, "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>", COLORS[j % COLORS.len()], esc(n));
    }
    s.push_str("</div>");
    s
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

fn num(v: f64) -> String {
    format!("{v:.3}")
}

/// A histogram of `values` per series over shared bins, as grouped bars.
fn histogram(id: &str, series: &[(String, Vec<f64>)]) -> String {
    let max = series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0, f64::max).max(1.0);
    let bins = 8usize;
    let step = (max / bins as f64).ceil().max(1.0);
    let labels: Vec<String> =
        (0..bins).map(|b| format!("{:.0}–{:.0}", b as f64 * step, (b + 1) as f64 * step - 1.0)).collect();
    let shares: Vec<(String, Vec<f64>)> = series
        .iter()
        .map(|(n, v)| {
            let mut h = vec![0.0; bins];
            for x in v {
                h[((x / step) as usize).min(bins - 1)] += 1.0;
            }
            let total = v.len().max(1) as f64;
            (n.clone(), h.into_iter().map(|c| c / total).collect())
        })
        .collect();
    let top = shares.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0, f64::max);
    bars(id, &labels, &shares, top, pct)
}

/// The persona report's page.
pub fn persona(r: &PersonaReport) -> String {
    let mut b = String::new();
    let names: Vec<String> = std::iter::once(format!("{} (real replies)", r.persona))
        .chain(r.models.iter().map(|m| m.name.clone()))
        .collect();
    let _ = write!(
        b,
        "<p>Persona <b>{}</b>; {} held-out contexts from {} (split: {}). The attribution classifier tells the \
real participants' held-out messages apart with accuracy <b>{}</b> (always guessing the most active: {}).</p>",
        esc(&r.persona),
        r.samples,
        esc(&r.split.cutoff),
        esc(&r.split_source),
        pct(r.attributor.accuracy),
        pct(r.attributor.chance)
    );
    b.push_str(
        "<h2>Summary</h2><table><tr><th>model</th><th>attributed to the persona</th><th>style distance</th>\
<th>held-out loss</th><th>perplexity</th><th>distinct-2</th><th>copied from training</th></tr>",
    );
    let _ = write!(
        b,
        "<tr><td>{} (real)</td><td class=n>{}</td><td class=n>{}</td><td></td><td></td><td class=n>{}</td><td class=n>{}</td></tr>",
        esc(&r.persona),
        pct(r.real.attribution),
        num(r.real.style_distance),
        num(r.real.diversity.distinct_2),
        pct(r.real.diversity.copied_share)
    );
    for m in &r.models {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.2}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&m.name),
            pct(m.figures.attribution),
            num(m.figures.style_distance),
            num(m.heldout_loss),
            m.heldout_perplexity,
            num(m.figures.diversity.distinct_2),
            pct(m.figures.diversity.copied_share)
        );
    }
    b.push_str("</table>");
    b.push_str(&legend(&names));

    let people: Vec<String> = r.attributor.participants.iter().map(|(a, _)| a.clone()).collect();
    let all: Vec<(String, &crate::figures::Figures)> = std::iter::once((names[0].clone(), &r.real))
        .chain(r.models.iter().map(|m| (m.name.clone(), &m.figures)))
        .collect();
    b.push_str("<h2>Whom the replies are attributed to</h2>");
    let series: Vec<(String, Vec<f64>)> = all
        .iter()
        .map(|(n, f)| (n.clone(), people.iter().map(|p| f.attributed_to.get(p).copied().unwrap_or(0.0)).collect()))
        .collect();
    b.push_str(&bars("attribution", &people, &series, 1.0, pct));
    b.push_str("<h2>Style similarity to each participant (char 3–5-gram TF-IDF cosine)</h2>");
    let series: Vec<(String, Vec<f64>)> = all
        .iter()
        .map(|(n, f)| (n.clone(), people.iter().map(|p| f.style_similarity.get(p).copied().unwrap_or(0.0)).collect()))
        .collect();
    b.push_str(&bars("style", &people, &series, 1.0, num));

    let feats = |f: fn(&crate::style::Features) -> f64| -> Vec<(String, Vec<f64>)> {
        let mut v = vec![(names[0].clone(), r.examples.iter().map(|e| f(&crate::style::features(&e.real))).collect())];
        for (j, m) in r.models.iter().enumerate() {
            v.push((m.name.clone(), r.examples.iter().map(|e| f(&crate::style::features(&e.generated[j]))).collect()));
        }
        v
    };
    b.push_str("<h2>Reply length in words</h2>");
    b.push_str(&histogram("length-words", &feats(|f| f.words)));
    b.push_str("<h2>Reply length in characters</h2>");
    b.push_str(&histogram("length-chars", &feats(|f| f.chars)));
    // Shares of replies (0..1) and rates per character (scaled to the largest), real against generated.
    let value = |j: usize, k: &str| -> f64 {
        let d = &r.real.distributions[k];
        if j == 0 { d.real } else { r.models[j - 1].figures.distributions[k].generated }
    };
    let plot = |b: &mut String, id: &str, keys: &[&str], max: f64| {
        let labels: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let series: Vec<(String, Vec<f64>)> =
            all.iter().enumerate().map(|(j, (n, _))| (n.clone(), keys.iter().map(|k| value(j, k)).collect())).collect();
        b.push_str(&bars(id, &labels, &series, max, num));
    };
    b.push_str("<h2>Shares of replies: questions, laughter, the commonest script and language</h2>");
    plot(&mut b, "shares", &["question", "laughter", "script", "language"], 1.0);
    b.push_str("<h2>Rates per character: emoji, punctuation, upper case (of cased letters)</h2>");
    let rate_keys = ["emoji_rate", "punct_rate", "upper_rate"];
    let top = (0..all.len())
        .flat_map(|j| rate_keys.iter().map(move |k| (j, *k)))
        .map(|(j, k)| value(j, k))
        .fold(0.0, f64::max);
    plot(&mut b, "rates", &rate_keys, top.max(1e-9));
    let keys: Vec<&str> = r.real.distributions.keys().copied().collect();
    b.push_str("<table><tr><th>feature</th><th>real</th>");
    for m in &r.models {
        let _ = write!(b, "<th>{}</th><th>distance</th>", esc(&m.name));
    }
    b.push_str("</tr>");
    for k in &keys {
        let _ = write!(b, "<tr><td>{k}</td><td class=n>{}</td>", num(r.real.distributions[k].real));
        for m in &r.models {
            let d = &m.figures.distributions[k];
            let _ = write!(b, "<td class=n>{}</td><td class=n>{} {}</td>", num(d.generated), d.test, num(d.distance));
        }
        b.push_str("</tr>");
    }
    b.push_str("</table>");
    b.push_str("<h2>Held-out loss per model</h2>");
    let series: Vec<(String, Vec<f64>)> = vec![("loss".into(), r.models.iter().map(|m| m.heldout_loss).collect())];
    let max = r.models.iter().map(|m| m.heldout_loss).fold(0.0, f64::max);
    b.push_str(&bars("loss", &r.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(), &series, max, num));
    for m in &r.models {
        if !m.figures.diversity.memorised.is_empty() {
            let _ = write!(b, "<h2>Memorised lines from {} (verbatim in the training messages)</h2><ul>", esc(&m.name));
            for l in &m.figures.diversity.memorised {
                let _ = write!(b, "<li>{}</li>", esc(l));
            }
            b.push_str("</ul>");
        }
    }
    b.push_str("<h2>Samples</h2><table class=\"samples\"><tr><th>context</th><th>real reply</th>");
    for m in &r.models {
        let _ = write!(b, "<th>{}</th>", esc(&m.name));
    }
    b.push_str("</tr>");
    for e in &r.examples {
        let _ = write!(b, "<tr><td class=ctx>{}</td><td class=real>{}</td>", esc(&e.context.join("\n")), esc(&e.real));
        for g in &e.generated {
            let _ = write!(b, "<td class=gen>{}</td>", esc(g));
        }
        b.push_str("</tr>");
    }
    b.push_str("</table>");
    page(&format!("banter-eval persona: {}", r.persona), &b)
}

/// The loss report's page.
pub fn loss(results: &[LossResult], files: &[String]) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<p>Data: {}</p><table><tr><th>model</th><th>loss</th><th>perplexity</th><th>tokens</th></tr>",
        esc(&files.join(", "))
    );
    for r in results {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{:.2}</td><td class=n>{}</td></tr>",
            esc(&r.name),
            num(r.loss),
            r.perplexity,
            r.tokens
        );
    }
    b.push_str("</table><h2>Loss per model</h2>");
    let max = results.iter().map(|r| r.loss).fold(0.0, f64::max);
    let series = vec![("loss".to_string(), results.iter().map(|r| r.loss).collect())];
    b.push_str(&bars("loss", &results.iter().map(|r| r.name.clone()).collect::<Vec<_>>(), &series, max, num));
    page("banter-eval loss", &b)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::model::Candidate;
    use crate::persona::{AttributorCheck, Example, ModelResult, PersonaReport};

    #[test]
    fn text_is_escaped() {
        assert_eq!(super::esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }

    /// Whatever the chat, the names and the models hold, the page shows it as text: no markup, no script.
    #[test]
    fn hostile_chat_text_and_names_stay_text() {
        let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
        let people = vec![
            (format!("Sara{evil}"), vec![format!("hi {evil}"), "haha ok".into()]),
            ("Omid".to_string(), vec!["Good evening.".into(), format!("Regards {evil}")]),
        ];
        let att = crate::ngram::Attributor::fit(&people);
        let replies = vec![format!("{evil} haha"), "Good evening.".to_string()];
        let figs =
            crate::figures::measure(&replies, &replies, &att, 0, &HashSet::from([crate::stats::norm(&replies[0])]));
        let cand = Candidate { model: format!("/m/{evil}").into(), adapter: None };
        let report = PersonaReport {
            persona: people[0].0.clone(),
            split: banter_quality::split::Split {
                format: "banter-eval-split".into(),
                cutoff: evil.into(),
                chat: evil.into(),
                holdout: 0.1,
                messages: 2,
                held_out: 1,
            },
            split_source: evil.into(),
            samples: 2,
            attributor: AttributorCheck {
                participants: people.iter().map(|(a, m)| (a.clone(), m.len())).collect(),
                accuracy: 1.0,
                chance: 0.5,
                messages: 2,
            },
            real: figs.clone(),
            models: vec![ModelResult {
                name: cand.name(),
                candidate: cand,
                heldout_loss: f64::NAN,
                heldout_perplexity: f64::NAN,
                figures: figs,
            }],
            examples: replies
                .iter()
                .map(|r| Example {
                    ts: evil.into(),
                    context: vec![format!("A: {evil}")],
                    real: r.clone(),
                    generated: vec![r.clone()],
                })
                .collect(),
        };
        let page = super::persona(&report);
        assert!(!page.contains("<script") && !page.contains("<img"), "markup leaked");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.matches("data-plot=").count() >= 7);
    }
}
