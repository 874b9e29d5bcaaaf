//! Attention of one new position over a head's cached keys and values (a decode step):
//! `out = softmax(q · Kᵀ · scale) · V`, with `K` and `V` row-major `(positions, head_dim)`.
//!
//! For one query row a matrix library spends more on its calls than on the arithmetic (9 heads ×
//! a few hundred positions × 64 dimensions per layer); these are plain loops over contiguous
//! slices, compiled again with AVX2/FMA or AVX-512 where the CPU has them.

use super::Isa;

/// Writes the attention output of one query `q` (`head_dim` values) into `out`, using `scores`
/// as scratch space. `keys` and `values` hold the same number of whole rows of `q.len()`.
/// Panics on mismatched lengths.
pub fn attend_one(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    let head_dim = q.len();
    assert!(head_dim > 0 && out.len() == head_dim, "query and output lengths");
    assert!(keys.len() == values.len() && keys.len().is_multiple_of(head_dim), "key and value rows");
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni | Isa::Avx512 => {
            // SAFETY: `Isa::detect` found AVX-512 F, BW and VL on this CPU.
            #[allow(unsafe_code)]
            unsafe {
                attend_avx512(q, keys, values, scale, scores, out)
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: `Isa::detect` found AVX2 and FMA on this CPU.
            #[allow(unsafe_code)]
            unsafe {
                attend_avx2(q, keys, values, scale, scores, out)
            }
        }
        _ => attend_portable(q, keys, values, scale, scores, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
fn attend_avx512(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    attend_portable(q, keys, values, scale, scores, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attend_avx2(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    attend_portable(q, keys, values, scale, scores, out)
}

/// Lanes of the independent partial sums (lets the compiler vectorise the dot products).
const LANES: usize = 16;

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut partial = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (a, b) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            partial[lane] += a[lane] * b[lane];
        }
    }
    partial.iter().sum::<f32>() + tail
}

#[inline(always)]
fn attend_portable(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    let head_dim = q.len();
    // Plain loops, not iterator adapters: those are separate generic functions the compiler may
    // not inline here, and then they run without this function's vector instructions.
    scores.clear();
    let mut max = f32::NEG_INFINITY;
    for key in keys.chunks_exact(head_dim) {
        let score = dot(q, key) * scale;
        max = max.max(score);
        scores.push(score);
    }
    let mut total = 0f32;
    for score in scores.iter_mut() {
        *score = (*score - max).exp();
        total += *score;
    }
    out.fill(0.0);
    for (&weight, value) in scores.iter().zip(values.chunks_exact(head_dim)) {
        for (o, v) in out.iter_mut().zip(value) {
            *o += v * weight;
        }
    }
    let inverse = if total > 0.0 { 1.0 / total } else { 0.0 };
    for o in out.iter_mut() {
        *o *= inverse;
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    #[test]
    fn matches_candle_softmax_attention() -> candle_core::Result<()> {
        let device = Device::Cpu;
        for (head_dim, positions) in [(64, 1), (64, 37), (20, 5), (8, 300)] {
            let q = Tensor::randn(0f32, 1.0, (1, head_dim), &device)?;
            let k = Tensor::randn(0f32, 1.0, (positions, head_dim), &device)?;
            let v = Tensor::randn(0f32, 1.0, (positions, head_dim), &device)?;
            let scale = 1.0 / (head_dim as f32).sqrt();
            let weights = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * f64::from(scale))?)?;
            let expected: Vec<f32> = weights.matmul(&v)?.flatten_all()?.to_vec1()?;
            let mut out = vec![f32::NAN; head_dim];
            let mut scores = Vec::new();
            let (q, k, v): (Vec<f32>, Vec<f32>, Vec<f32>) =
                (q.flatten_all()?.to_vec1()?, k.flatten_all()?.to_vec1()?, v.flatten_all()?.to_vec1()?);
            attend_one(&q, &k, &v, scale, &mut scores, &mut out);
            let mut portable = vec![f32::NAN; head_dim];
            attend_portable(&q, &k, &v, scale, &mut scores, &mut portable);
            for ((a, b), e) in out.iter().zip(&portable).zip(&expected) {
                assert!((a - e).abs() < 1e-5 && (a - b).abs() < 1e-5, "{head_dim}x{positions}: {a} {b} vs {e}");
            }
        }
        Ok(())
    }

    #[test]
    #[should_panic(expected = "key and value rows")]
    fn rejects_partial_rows() {
        attend_one(&[1.0; 4], &[1.0; 6], &[1.0; 6], 1.0, &mut Vec::new(), &mut [0.0; 4]);
    }
}
