//! `banter-eval qa`: question/answer pairs for a model trained on documents — exact match and token F1 of the
//! generated answer, normalised as SQuAD's script does (lower case, punctuation and English articles removed,
//! whitespace collapsed).

use serde::Serialize;

/// SQuAD's answer normalisation.
pub fn normalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: String =
        lower.chars().map(|c| if c.is_ascii_punctuation() || c.is_ascii_control() { ' ' } else { c }).collect();
    no_punct.split_whitespace().filter(|w| !matches!(*w, "a" | "an" | "the")).collect::<Vec<_>>().join(" ")
}

/// 1 when the normalised answers are equal.
pub fn exact_match(pred: &str, gold: &str) -> f64 {
    f64::from(normalize(pred) == normalize(gold))
}

/// Token-overlap F1 of the normalised answers.
pub fn f1(pred: &str, gold: &str) -> f64 {
    let p: Vec<String> = normalize(pred).split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect();
    let g: Vec<String> = normalize(gold).split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect();
    if p.is_empty() || g.is_empty() {
        return f64::from(p == g);
    }
    let mut left = g.clone();
    let mut common = 0usize;
    for w in &p {
        if let Some(i) = left.iter().position(|x| x == w) {
            left.swap_remove(i);
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let (pr, rc) = (common as f64 / p.len() as f64, common as f64 / g.len() as f64);
    2.0 * pr * rc / (pr + rc)
}

/// The best score against any of the gold answers.
pub fn best(pred: &str, golds: &[String], score: fn(&str, &str) -> f64) -> f64 {
    golds.iter().map(|g| score(pred, g)).fold(0.0, f64::max)
}

/// One question's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Answered {
    /// The question.
    pub question: String,
    /// Accepted answers.
    pub answers: Vec<String>,
    /// What the model said.
    pub generated: String,
    /// Exact match (0 or 1).
    pub exact_match: f64,
    /// Token F1.
    pub f1: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squad_normalisation_exact_match_and_f1() {
        assert_eq!(normalize("The  Eiffel Tower!"), "eiffel tower");
        assert_eq!(exact_match("the eiffel tower.", "Eiffel Tower"), 1.0);
        assert_eq!(exact_match("tower", "Eiffel Tower"), 0.0);
        assert!((f1("tower in Paris", "Eiffel Tower") - 0.4).abs() < 1e-12);
        assert_eq!(f1("", ""), 1.0);
        assert_eq!(f1("x", ""), 0.0);
        assert_eq!(best("Paris", &["London".into(), "paris".into()], exact_match), 1.0);
    }
}
