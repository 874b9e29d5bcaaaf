//! Attention of one new position over a head's cached keys and values (a decode step):
//! `out = softmax(q · Kᵀ · scale) · V`, with `K` in [`KeyBlocks`] and `V` row-major
//! `(positions, head_dim)`.
//!
//! For one query row a matrix library spends more on its calls than on the arithmetic (9 heads ×
//! a few hundred positions × 64 dimensions per layer); these are plain loops over contiguous
//! slices, compiled again with AVX2/FMA or AVX-512 where the CPU has them.

use super::Isa;

/// Positions per key block.
pub const KEY_BLOCK: usize = 16;

/// One head's cached keys, in blocks of [`KEY_BLOCK`] positions stored dimension-major (block
/// `b`, dimension `d`, slot `j` holds dimension `d` of position `16b + j`): the scores of a
/// block are then `head_dim` multiply-adds of a broadcast query value into one 16-lane vector,
/// with no horizontal sums. Grows in place.
#[derive(Debug, Clone, Default)]
pub struct KeyBlocks {
    head_dim: usize,
    n_positions: usize,
    blocks: Vec<f32>,
}

impl KeyBlocks {
    /// Appends the key of the next position. Panics if its length differs from earlier keys'.
    pub fn push(&mut self, key: &[f32]) {
        if self.n_positions == 0 {
            self.head_dim = key.len();
        }
        assert_eq!(key.len(), self.head_dim, "key length");
        let slot = self.n_positions % KEY_BLOCK;
        if slot == 0 {
            self.blocks.resize(self.blocks.len() + self.head_dim * KEY_BLOCK, 0.0);
        }
        let block = &mut self.blocks[(self.n_positions / KEY_BLOCK) * self.head_dim * KEY_BLOCK..];
        for (d, &value) in key.iter().enumerate() {
            block[d * KEY_BLOCK + slot] = value;
        }
        self.n_positions += 1;
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.n_positions
    }

    pub fn is_empty(&self) -> bool {
        self.n_positions == 0
    }

    /// Keeps the first `n_positions` positions.
    pub fn truncate(&mut self, n_positions: usize) {
        if n_positions >= self.n_positions {
            return;
        }
        self.blocks.truncate(n_positions.div_ceil(KEY_BLOCK) * self.head_dim * KEY_BLOCK);
        // Clear the dropped slots of the last block (they are written again before use; cleared
        // so equal caches hold equal values).
        if let Some(last_block) = self.blocks.rchunks_exact_mut(self.head_dim * KEY_BLOCK).next()
            && !n_positions.is_multiple_of(KEY_BLOCK)
        {
            for dimension in last_block.chunks_exact_mut(KEY_BLOCK) {
                dimension[n_positions % KEY_BLOCK..].fill(0.0);
            }
        }
        self.n_positions = n_positions;
    }

    /// The keys as row-major `(positions, head_dim)` values.
    pub fn to_rows(&self) -> Vec<f32> {
        let mut rows = vec![0f32; self.n_positions * self.head_dim];
        for (position, row) in rows.chunks_exact_mut(self.head_dim.max(1)).enumerate() {
            let block = &self.blocks[(position / KEY_BLOCK) * self.head_dim * KEY_BLOCK..];
            for (d, value) in row.iter_mut().enumerate() {
                *value = block[d * KEY_BLOCK + position % KEY_BLOCK];
            }
        }
        rows
    }

    /// Bytes held (whole blocks).
    pub fn size_bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<f32>()
    }
}

/// Writes the attention output of one query `q` (`head_dim` values) into `out`, using `scores`
/// as scratch space. `values` holds one row of `q.len()` per position in `keys`. Panics on
/// mismatched lengths.
pub fn attend_one(q: &[f32], keys: &KeyBlocks, values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    let head_dim = q.len();
    assert!(head_dim > 0 && out.len() == head_dim, "query and output lengths");
    assert!(
        (keys.is_empty() || keys.head_dim == head_dim) && values.len() == keys.len() * head_dim,
        "key and value rows"
    );
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
fn attend_avx512(q: &[f32], keys: &KeyBlocks, values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    attend_portable(q, keys, values, scale, scores, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attend_avx2(q: &[f32], keys: &KeyBlocks, values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    attend_portable(q, keys, values, scale, scores, out)
}

// Plain loops, not iterator adapters, below: those are separate generic functions the compiler
// may not inline into the callers above, and then they run without their vector instructions.
#[inline(always)]
fn attend_portable(q: &[f32], keys: &KeyBlocks, values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    let head_dim = q.len();
    scores.clear();
    let mut max = f32::NEG_INFINITY;
    for (block_idx, block) in keys.blocks.chunks_exact(head_dim * KEY_BLOCK).enumerate() {
        // Four independent partial sums (dimensions d mod 4): one chain of dependent additions
        // would wait on each addition's latency.
        let mut partial = [0f32; 4 * KEY_BLOCK];
        for (q4, dimensions) in q.chunks_exact(4).zip(block.chunks_exact(4 * KEY_BLOCK)) {
            let Ok(dimensions): Result<&[f32; 4 * KEY_BLOCK], _> = dimensions.try_into() else { continue };
            for lane in 0..4 * KEY_BLOCK {
                partial[lane] += q4[lane / KEY_BLOCK] * dimensions[lane];
            }
        }
        let tail = head_dim / 4 * 4;
        for (&q_d, dimension) in q[tail..].iter().zip(block[tail * KEY_BLOCK..].chunks_exact(KEY_BLOCK)) {
            for slot in 0..KEY_BLOCK {
                partial[slot] += q_d * dimension[slot];
            }
        }
        let mut block_scores = [0f32; KEY_BLOCK];
        for slot in 0..KEY_BLOCK {
            block_scores[slot] = (partial[slot] + partial[KEY_BLOCK + slot])
                + (partial[2 * KEY_BLOCK + slot] + partial[3 * KEY_BLOCK + slot]);
        }
        let valid = (keys.n_positions - block_idx * KEY_BLOCK).min(KEY_BLOCK);
        for &score in &block_scores[..valid] {
            let score = score * scale;
            max = max.max(score);
            scores.push(score);
        }
    }
    let mut total = 0f32;
    for score in scores.iter_mut() {
        *score = (*score - max).exp();
        total += *score;
    }
    let inverse = if total > 0.0 { 1.0 / total } else { 0.0 };
    // 64 output dimensions at a time (four independent 16-lane sums), summed over every position
    // in local arrays (registers), not in `out` (which the compiler would load and store at every
    // position); then the remaining dimensions 16 at a time.
    const WIDE: usize = 4 * KEY_BLOCK;
    let mut start = 0;
    while start + WIDE <= head_dim {
        let mut sums = [0f32; WIDE];
        for (&weight, value) in scores.iter().zip(values.chunks_exact(head_dim)) {
            let Ok(value): Result<&[f32; WIDE], _> = value[start..start + WIDE].try_into() else { continue };
            for lane in 0..WIDE {
                sums[lane] += value[lane] * weight;
            }
        }
        for (o, sum) in out[start..start + WIDE].iter_mut().zip(sums) {
            *o = sum * inverse;
        }
        start += WIDE;
    }
    while start < head_dim {
        let width = (head_dim - start).min(KEY_BLOCK);
        let mut sums = [0f32; KEY_BLOCK];
        for (&weight, value) in scores.iter().zip(values.chunks_exact(head_dim)) {
            for (sum, v) in sums.iter_mut().zip(&value[start..start + width]) {
                *sum += v * weight;
            }
        }
        for (o, sum) in out[start..start + width].iter_mut().zip(sums) {
            *o = sum * inverse;
        }
        start += width;
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    fn blocks_of(rows: &[f32], head_dim: usize) -> KeyBlocks {
        let mut keys = KeyBlocks::default();
        for row in rows.chunks_exact(head_dim) {
            keys.push(row);
        }
        keys
    }

    #[test]
    fn matches_candle_softmax_attention() -> candle_core::Result<()> {
        let device = Device::Cpu;
        for (head_dim, positions) in [(64, 1), (64, 37), (20, 5), (8, 300), (64, 16), (64, 32), (96, 40), (131, 17)] {
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
            let keys = blocks_of(&k, head_dim);
            assert_eq!((keys.len(), keys.to_rows()), (positions, k.clone()));
            attend_one(&q, &keys, &v, scale, &mut scores, &mut out);
            let mut portable = vec![f32::NAN; head_dim];
            attend_portable(&q, &keys, &v, scale, &mut scores, &mut portable);
            for ((a, b), e) in out.iter().zip(&portable).zip(&expected) {
                assert!((a - e).abs() < 1e-5 && (a - b).abs() < 1e-5, "{head_dim}x{positions}: {a} {b} vs {e}");
            }
        }
        Ok(())
    }

    #[test]
    fn key_blocks_truncate_and_grow_again() {
        let rows: Vec<f32> = (0..40 * 4).map(|x| x as f32).collect();
        for keep in [0, 1, 15, 16, 17, 39, 40, 99] {
            let mut keys = blocks_of(&rows, 4);
            keys.truncate(keep);
            let kept = keep.min(40);
            assert_eq!(keys.len(), kept);
            assert_eq!(keys.to_rows(), rows[..kept * 4]);
            for row in rows[kept * 4..].chunks_exact(4) {
                keys.push(row);
            }
            assert_eq!(keys.to_rows(), rows, "kept {keep}");
            assert_eq!(keys.size_bytes(), 48 * 4 * 4, "three blocks of 16 positions");
        }
    }

    #[test]
    #[should_panic(expected = "key and value rows")]
    fn rejects_values_without_keys() {
        attend_one(&[1.0; 4], &blocks_of(&[1.0; 4], 4), &[1.0; 8], 1.0, &mut Vec::new(), &mut [0.0; 4]);
    }
}
