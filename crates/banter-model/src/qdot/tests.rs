use super::*;

fn levels() -> Vec<Level> {
    [Level::Vnni512, Level::Avx2, Level::Portable].into_iter().filter(|&l| supported(l)).collect()
}

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Every level gives the exact integer sums the portable code gives (up to the order of fp32 block sums),
/// for lengths with and without a partial block, with extreme values (±127, 0 and 255 bytes).
#[test]
fn int8_levels_agree_with_the_reference_sum() {
    let mut seed = 7;
    for k in [32usize, 64, 96, 128, 200, 768, 3072, 31, 1] {
        let x: Vec<f32> = (0..2 * k).map(|_| lcg(&mut seed) * 3.0).collect();
        let mut u: Vec<u8> = (0..k).map(|_| ((lcg(&mut seed) * 127.0).round() + 128.0) as u8).collect();
        u[0] = 1;
        if k > 2 {
            u[1] = 255;
            u[2] = 128;
        }
        let mut a = QAct::default();
        a.quantize(&x, k);
        for m in 0..2 {
            // Exact: Σ_b s_b Σ (u − 128) q in f64.
            let want: f64 = (0..a.blocks())
                .map(|b| {
                    let r = b * BLOCK..((b + 1) * BLOCK).min(k);
                    let d: i64 = r.map(|i| (i64::from(u[i]) - 128) * i64::from(a.q[m * k + i])).sum();
                    f64::from(a.scale[m * a.blocks() + b]) * d as f64
                })
                .sum();
            for l in levels() {
                let got = f64::from(dot_u8_with(l, &u, &a, m));
                assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{l:?} k={k}: {got} vs {want}");
            }
            // And it approximates the fp32 product.
            let exact: f32 = (0..k).map(|i| (f32::from(u[i]) - 128.0) * x[m * k + i]).sum();
            let norm: f32 = (0..k).map(|i| ((f32::from(u[i]) - 128.0) * x[m * k + i]).abs()).sum();
            assert!((want as f32 - exact).abs() <= 0.01 * norm.max(1.0), "k={k}");
        }
    }
}

#[test]
fn q4_levels_agree_with_the_reference_sum() {
    let mut seed = 11;
    for k in [64usize, 128, 576, 768, 896] {
        let x: Vec<f32> = (0..3 * k).map(|_| lcg(&mut seed)).collect();
        let nib: Vec<u8> =
            (0..k / 2).map(|i| if i == 0 { 0xF0 } else { (lcg(&mut seed).abs() * 255.0) as u8 }).collect();
        let d: Vec<f32> = (0..k / BLOCK).map(|_| lcg(&mut seed) * 0.1).collect();
        let mut a = QAct::default();
        a.quantize(&x, k);
        for m in 0..3 {
            let want: f64 = (0..k / BLOCK)
                .map(|b| {
                    let s: i64 = (b * BLOCK..(b + 1) * BLOCK)
                        .map(|i| (i64::from(nibble(&nib, i)) - 8) * i64::from(a.q[m * k + i]))
                        .sum();
                    f64::from(d[b]) * f64::from(a.scale[m * (k / BLOCK) + b]) * s as f64
                })
                .sum();
            for l in levels() {
                let got = f64::from(dot_q4_with(l, &nib, &d, &a, m));
                assert!((got - want).abs() <= 1e-4 * want.abs().max(1e-2), "{l:?} k={k}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn nibble_order_is_low_then_high_half_of_each_64() {
    let mut nib = vec![0u8; 64];
    nib[0] = 0x21; // element 0 → 1, element 32 → 2
    nib[32 + 5] = 0x43; // element 64 + 5 → 3, element 64 + 37 → 4
    assert_eq!((nibble(&nib, 0), nibble(&nib, 32), nibble(&nib, 69), nibble(&nib, 101)), (1, 2, 3, 4));
}

#[test]
fn zero_blocks_quantize_without_nan() {
    let mut a = QAct::default();
    let x = [0f32; 40];
    a.quantize(&x, 40);
    assert!(a.scale.iter().all(|s| *s == 0.0) && a.q.iter().all(|q| *q == 0));
    let u = [200u8; 40];
    for l in levels() {
        assert_eq!(dot_u8_with(l, &u, &a, 0), 0.0);
    }
}
