//! The attribution classifier on real multi-speaker text: tinyshakespeare's dialogue (real lines of real
//! speakers), the 8 most frequent speakers, each one's last 20% of speeches held out. Fitted on the rest, it
//! must attribute the held-out speeches well above chance (`make bench` prints the figures beside
//! scikit-learn's).

use banter_eval_lib::ngram::Attributor;
use banter_eval_lib::speeches;

#[test]
fn attributes_held_out_speeches_of_real_speakers_well_above_chance() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/eval/tinyshakespeare.txt");
    let all = speeches::parse(&std::fs::read_to_string(path).unwrap());
    assert!(all.len() > 5000, "{}", all.len());
    let (names, fit, held) = speeches::split(&all, 8, 0.8);
    let m = Attributor::fit(&fit);
    let right = held.iter().filter(|(i, s)| m.attribute(s) == Some(*i)).count();
    let acc = right as f64 / held.len() as f64;
    let mut per = vec![0usize; names.len()];
    held.iter().for_each(|(i, _)| per[*i] += 1);
    let most = *per.iter().max().unwrap() as f64 / held.len() as f64;
    eprintln!(
        "speakers {names:?}: {} held-out speeches, accuracy {acc:.3}; always the most frequent {most:.3}",
        held.len()
    );
    assert!(acc > 2.0 * most, "accuracy {acc:.3} vs chance {most:.3}");
}
