//! Unit tests of `generate`.

use super::*;

fn s(temp: f64, k: usize, p: f64, rep: f64) -> Sampling {
    Sampling { temperature: temp, top_k: k, top_p: p, repetition_penalty: rep, max_new_tokens: 10, seed: 1 }
}

#[test]
fn greedy_is_argmax_after_the_penalty() {
    let mut rng = Rng::new(0);
    assert_eq!(pick(&mut [0.1, 3.0, 2.9], &[], &s(0.0, 0, 1.0, 1.0), &mut rng), 1);
    // Penalty 2 on id 1: 3.0 → 1.5, so id 2 wins.
    assert_eq!(pick(&mut [0.1, 3.0, 2.9], &[1], &s(0.0, 0, 1.0, 2.0), &mut rng), 2);
    // Negative logits are multiplied.
    assert_eq!(pick(&mut [-1.0, -1.5, -3.0], &[0], &s(0.0, 0, 1.0, 2.0), &mut rng), 1);
}

#[test]
fn top_k_and_top_p_restrict_the_choice() {
    let mut rng = Rng::new(7);
    for _ in 0..200 {
        let t = pick(&mut [5.0, 4.0, 1.0, 0.0], &[], &s(1.0, 2, 1.0, 1.0), &mut rng);
        assert!(t < 2);
        // p = 0.5: the first token alone has probability ≈ 0.71 ≥ 0.5.
        assert_eq!(pick(&mut [5.0, 4.0, 1.0, 0.0], &[], &s(1.0, 0, 0.5, 1.0), &mut rng), 0);
    }
}

#[test]
fn top_k_keeps_ties_with_the_kth_logit() {
    let mut rng = Rng::new(11);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..300 {
        seen.insert(pick(&mut [1.0, 3.0, 3.0, 2.0, -1.0], &[], &s(1.0, 1, 1.0, 1.0), &mut rng));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 2]);
}

#[test]
fn sampling_is_deterministic_for_a_seed() {
    let run = |seed| {
        let mut rng = Rng::new(seed);
        (0..20).map(|_| pick(&mut [1.0, 1.0, 1.0, 1.0], &[], &s(1.0, 0, 1.0, 1.0), &mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}
