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

/// The block kernels (every weight row against 1–9 activation rows, in groups of four) give what the per-row
/// kernels give, for int8 and q4, including extreme bytes.
#[test]
fn block_kernels_equal_the_row_kernels() {
    if !block::applies(level(), 64) {
        eprintln!("skipped: this CPU has no AVX-512 VNNI (the block kernels' only level)");
        return;
    }
    let mut seed = 5;
    for k in [64usize, 128, 768] {
        let n = 7;
        let u: Vec<u8> =
            (0..n * k).map(|i| if i % 97 == 0 { 255 } else { ((lcg(&mut seed) + 1.0) * 127.5) as u8 }).collect();
        let su: Vec<f32> = (0..n).map(|_| lcg(&mut seed).abs() + 0.01).collect();
        let nib: Vec<u8> =
            (0..n * k / 2).map(|i| if i % 89 == 0 { 0xFF } else { (lcg(&mut seed).abs() * 255.0) as u8 }).collect();
        let d: Vec<f32> = (0..n * k / BLOCK).map(|_| lcg(&mut seed) * 0.1).collect();
        for rows in [1usize, 2, 3, 4, 5, 9] {
            let x: Vec<f32> = (0..rows * k).map(|i| if i == 3 { 127.0 } else { lcg(&mut seed) * 2.0 }).collect();
            let mut a = QAct::default();
            a.quantize(&x, k);
            let (mut o8, mut o4) = (vec![0f32; n * rows], vec![0f32; n * rows]);
            block::int8(&u, &su, &a, rows, &mut o8);
            block::q4(&nib, &d, &a, rows, &mut o4);
            for j in 0..n {
                for m in 0..rows {
                    let w8 = dot_u8_with(Level::Portable, &u[j * k..(j + 1) * k], &a, m) * su[j];
                    let w4 = dot_q4_with(
                        Level::Portable,
                        &nib[j * k / 2..(j + 1) * k / 2],
                        &d[j * k / BLOCK..(j + 1) * k / BLOCK],
                        &a,
                        m,
                    );
                    let (g8, g4) = (o8[j * rows + m], o4[j * rows + m]);
                    assert!(
                        (g8 - w8).abs() <= 1e-4 * w8.abs().max(1.0),
                        "int8 k={k} rows={rows} ({j},{m}): {g8} vs {w8}"
                    );
                    assert!(
                        (g4 - w4).abs() <= 1e-4 * w4.abs().max(1e-2),
                        "q4 k={k} rows={rows} ({j},{m}): {g4} vs {w4}"
                    );
                }
            }
        }
    }
}

/// The prefill kernel (bf16 products of widened weights) equals an f64 product of the same widened weights
/// and bf16-rounded activations, for int8 and q4, row counts around its 4 × 4 blocks, and weight-row counts
/// that are not multiples of 4.
#[test]
fn prefill_kernel_equals_the_widened_product() {
    if !prefill::applies(prefill::MIN_ROWS, 64) {
        eprintln!("skipped: this CPU has no AVX-512 BF16 (the prefill kernel's only level)");
        return;
    }
    assert!(!prefill::applies(prefill::MIN_ROWS - 1, 64) && !prefill::applies(prefill::MIN_ROWS, 96));
    let bf = |v: f32| f32::from_bits(u32::from(crate::bf16::to_bf16(v)) << 16);
    let mut seed = 3;
    for k in [64usize, 768] {
        let n = 7;
        let u: Vec<u8> =
            (0..n * k).map(|i| if i % 61 == 0 { 0 } else { ((lcg(&mut seed) + 1.0) * 127.5) as u8 }).collect();
        let su: Vec<f32> = (0..n).map(|_| lcg(&mut seed).abs() + 0.01).collect();
        let nib: Vec<u8> = (0..n * k / 2).map(|_| (lcg(&mut seed).abs() * 255.0) as u8).collect();
        let d: Vec<f32> = (0..n * k / BLOCK).map(|_| lcg(&mut seed) * 0.1).collect();
        for rows in [8usize, 9, 11, 16] {
            let x: Vec<f32> = (0..rows * k).map(|_| lcg(&mut seed) * 2.0).collect();
            let xb: Vec<u16> = x.iter().map(|&v| crate::bf16::to_bf16(v)).collect();
            assert_eq!(crate::bf16::to_bf16_all(&x), xb, "the SIMD rounding is to_bf16's");
            for (name, w) in
                [("int8", prefill::Rows::Int8 { u: &u, scales: &su }), ("q4", prefill::Rows::Q4 { nib: &nib, d: &d })]
            {
                // Weight rows 1.. (a chunk that does not start at 0), 6 of them (one group of 4, one of 2).
                let mut out = vec![0f32; 6 * rows];
                prefill::gemm(w, k, &xb, rows, 1, &mut out);
                for j in 0..6 {
                    let nn = 1 + j;
                    for m in 0..rows {
                        let want: f64 = (0..k)
                            .map(|i| {
                                let wv = match w {
                                    prefill::Rows::Int8 { .. } => {
                                        (f64::from(u[nn * k + i]) - 128.0) * f64::from(su[nn])
                                    }
                                    prefill::Rows::Q4 { .. } => {
                                        f64::from(bf((f32::from(nibble(&nib[nn * k / 2..], i)) - 8.0)
                                            * d[nn * k / BLOCK + i / BLOCK]))
                                    }
                                };
                                wv * f64::from(bf(x[m * k + i]))
                            })
                            .sum();
                        let got = f64::from(out[j * rows + m]);
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{name} k={k} rows={rows} ({j},{m}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
