//! Character 3–5-gram TF-IDF (the training-free authorship signal of arXiv 2509.24930): each author's profile
//! is the normalised centroid of their messages' vectors; a text is attributed to the author whose profile
//! is nearest by cosine. Sublinear term frequency, smoothed IDF, L2 norms, as scikit-learn's
//! `TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)`.

use std::collections::HashMap;

/// A sparse vector: n-gram id → weight.
pub type Vector = HashMap<u32, f32>;

/// The n-gram vocabulary and its IDF, fitted on the training messages.
#[derive(Debug, Default)]
pub struct Tfidf {
    ids: HashMap<String, u32>,
    idf: Vec<f32>,
}

/// The character n-grams (3 to 5) of each word padded with spaces (`char_wb`), lower-cased.
fn grams(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in text.to_lowercase().split_whitespace() {
        let padded: Vec<char> = std::iter::once(' ').chain(w.chars()).chain(std::iter::once(' ')).collect();
        for n in 3..=5 {
            if padded.len() < n {
                if n == 3 {
                    out.push(padded.iter().collect());
                }
                break;
            }
            for g in padded.windows(n) {
                out.push(g.iter().collect());
            }
        }
    }
    out
}

fn normalise(v: &mut Vector) {
    let n = v.values().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.values_mut().for_each(|x| *x /= n);
    }
}

/// Cosine of two L2-normalised vectors.
pub fn cosine(a: &Vector, b: &Vector) -> f64 {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.iter().map(|(k, x)| x * large.get(k).copied().unwrap_or(0.0)).sum::<f32>() as f64
}

impl Tfidf {
    /// Fits the vocabulary and IDF on `docs`.
    pub fn fit<'a>(docs: impl IntoIterator<Item = &'a str>) -> Tfidf {
        let mut t = Tfidf::default();
        let mut df: Vec<u32> = Vec::new();
        let mut n = 0u32;
        for d in docs {
            n += 1;
            let mut seen: Vec<u32> = grams(d)
                .into_iter()
                .map(|g| {
                    let next = t.ids.len() as u32;
                    *t.ids.entry(g).or_insert(next)
                })
                .collect();
            seen.sort_unstable();
            seen.dedup();
            df.resize(t.ids.len(), 0);
            for i in seen {
                df[i as usize] += 1;
            }
        }
        t.idf = df.iter().map(|&d| (((1 + n) as f32) / ((1 + d) as f32)).ln() + 1.0).collect();
        t
    }

    /// The normalised TF-IDF vector of `text` (n-grams unseen in fitting are left out).
    pub fn vector(&self, text: &str) -> Vector {
        let mut v = Vector::new();
        for g in grams(text) {
            if let Some(&i) = self.ids.get(&g) {
                *v.entry(i).or_default() += 1.0;
            }
        }
        for (i, x) in v.iter_mut() {
            *x = (1.0 + x.ln()) * self.idf[*i as usize];
        }
        normalise(&mut v);
        v
    }

    /// The normalised centroid of `texts`' vectors: a style profile.
    pub fn profile<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Vector {
        let mut c = Vector::new();
        for t in texts {
            for (k, x) in self.vector(t) {
                *c.entry(k).or_default() += x;
            }
        }
        normalise(&mut c);
        c
    }
}

/// The classifier over a chat's participants: multinomial naive Bayes over the same char n-grams (each
/// author's n-gram counts, add-α smoothed, a uniform prior so a talkative participant is not favoured),
/// with the TF-IDF profiles kept for style similarity.
#[derive(Debug)]
pub struct Attributor {
    /// The fitted vectoriser.
    pub tfidf: Tfidf,
    /// `(author, profile)`, in the order given.
    pub profiles: Vec<(String, Vector)>,
    /// Per author: log P(n-gram | author) by n-gram id, and the log-probability of an unseen one.
    nb: Vec<(HashMap<u32, f32>, f32)>,
}

impl Attributor {
    /// Fits on `(author, messages)` pairs (the training part of the chat).
    pub fn fit(by_author: &[(String, Vec<String>)]) -> Attributor {
        let tfidf = Tfidf::fit(by_author.iter().flat_map(|(_, m)| m.iter().map(String::as_str)));
        let profiles =
            by_author.iter().map(|(a, m)| (a.clone(), tfidf.profile(m.iter().map(String::as_str)))).collect();
        let vocab = tfidf.ids.len() as f32;
        let alpha = 0.1f32;
        let nb = by_author
            .iter()
            .map(|(_, msgs)| {
                let mut counts: HashMap<u32, f32> = HashMap::new();
                for m in msgs {
                    for g in grams(m) {
                        if let Some(&i) = tfidf.ids.get(&g) {
                            *counts.entry(i).or_default() += 1.0;
                        }
                    }
                }
                let total: f32 = counts.values().sum::<f32>() + alpha * vocab;
                let unseen = (alpha / total).ln();
                counts.values_mut().for_each(|c| *c = ((*c + alpha) / total).ln());
                (counts, unseen)
            })
            .collect();
        Attributor { tfidf, profiles, nb }
    }

    /// Naive Bayes log-likelihood of `text` under each author, in the profiles' order.
    pub fn log_likelihoods(&self, text: &str) -> Vec<f64> {
        let ids: Vec<u32> = grams(text).into_iter().filter_map(|g| self.tfidf.ids.get(&g).copied()).collect();
        self.nb
            .iter()
            .map(|(lp, unseen)| ids.iter().map(|i| lp.get(i).copied().unwrap_or(*unseen) as f64).sum())
            .collect()
    }

    /// Cosine of `text` to each profile, in the profiles' order.
    pub fn scores(&self, text: &str) -> Vec<f64> {
        let v = self.tfidf.vector(text);
        self.profiles.iter().map(|(_, p)| cosine(&v, p)).collect()
    }

    /// The author `text` is attributed to (index into the profiles); `None` when it shares no n-gram with
    /// any participant's messages.
    pub fn attribute(&self, text: &str) -> Option<usize> {
        if !grams(text).iter().any(|g| self.tfidf.ids.contains_key(g)) {
            return None;
        }
        let s = self.log_likelihoods(text);
        s.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_wb_grams_pad_each_word() {
        let g = grams("Hi yo");
        assert!(g.contains(&" hi".to_string()) && g.contains(&" hi ".to_string()) && g.contains(&"hi ".to_string()));
        assert!(!g.iter().any(|x| x.contains("i y")), "no n-gram crosses words: {g:?}");
    }

    #[test]
    fn identical_texts_have_cosine_one_and_disjoint_zero() {
        let t = Tfidf::fit(["hello there friend", "qqq zzz"]);
        let a = t.vector("hello there friend");
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert_eq!(cosine(&a, &t.vector("qqq zzz")), 0.0);
    }

    #[test]
    fn attributes_by_style() {
        let a = ["haha ok see u soon 😂", "lol yeah whatever haha", "omg haha no way lol"];
        let b = ["Good morning. I shall arrive at nine.", "Please confirm the meeting time.", "Thank you, regards."];
        let by = vec![
            ("A".to_string(), a.iter().map(|s| s.to_string()).collect()),
            ("B".to_string(), b.iter().map(|s| s.to_string()).collect()),
        ];
        let m = Attributor::fit(&by);
        assert_eq!(m.attribute("haha lol ok"), Some(0));
        assert_eq!(m.attribute("Please confirm, thank you."), Some(1));
        assert_eq!(m.attribute("ж"), None);
    }
}
