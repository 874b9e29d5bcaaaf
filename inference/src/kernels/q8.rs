//! Int8 matrix products for quantized weights: `out = x · Wᵀ` with `W` and `x` both quantized to
//! 8 bits in blocks of 32 along the inner dimension, one f32 scale per block (the arithmetic of
//! GGML's Q8_0 × Q8_0 dot product, which candle and llama.cpp use for Q8_0 weights).
//!
//! Layout ([`Q8Matrix`]): rows are taken 16 at a time (a *group*); for each group and block the
//! 16 × 32 weights form one 512-byte tile in which every 64-byte line holds 4 consecutive inner
//! positions of all 16 rows (`line s, row r, byte t` = weight `(r, 4s + t)`), stored as `q + 128`
//! (unsigned). One AVX-512 VNNI `vpdpbusd` then multiplies a line by 4 activation bytes
//! broadcast to every lane and adds into 16 row sums at once: no horizontal sums, and the
//! weights stream through memory exactly once per product. The `+ 128` offset makes the weights
//! the unsigned operand `vpdpbusd` needs; it is undone exactly by starting each block's integer
//! sum at `-128 · Σ x_q` of the block ([`Q8Rows`] keeps that correction).
//!
//! [`matmul`] is the one entry point: `x` of any number of rows (1 for a decode step, the prompt
//! length for prefill). AVX-512 VNNI CPUs get the intrinsics version above; AVX2 CPUs the same
//! arithmetic with `vpsignb`/`vpmaddubsw` on 32-byte halves; others the portable loops.

use super::Isa;

/// Weights per block (one scale each).
pub const BLOCK: usize = 32;
/// Rows per tile.
pub const GROUP: usize = 16;
const TILE_BYTES: usize = GROUP * BLOCK;
/// Groups processed together (independent accumulators keep the multiply units busy).
pub(super) const GROUPS_AT_ONCE: usize = 4;

/// A weight matrix `(rows, cols)` quantized to 8 bits in blocks of 32, in the tiled layout
/// described in the module docs.
#[derive(Clone)]
pub struct Q8Matrix {
    rows: usize,
    cols: usize,
    /// `groups × blocks` tiles of 512 bytes (`q + 128`).
    tiles: Vec<u8>,
    /// `groups × blocks × 16` scales.
    scales: Vec<f32>,
}

impl std::fmt::Debug for Q8Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Q8Matrix").field("rows", &self.rows).field("cols", &self.cols).finish_non_exhaustive()
    }
}

/// Quantizes one block: scale `max|x| / 127`, values rounded to the nearest integer.
#[inline(always)]
fn quantize_block(values: &[f32], quants: &mut [i8]) -> f32 {
    let amax = values.iter().fold(0f32, |max, x| max.max(x.abs()));
    let scale = amax / 127.0;
    let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    for (q, x) in quants.iter_mut().zip(values) {
        *q = (x * inverse).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// Quantizes whole blocks of `values` into `quants`, with each block's scale and `-128 · Σ q`.
#[inline(always)]
fn quantize_rows(values: &[f32], quants: &mut [i8], scales: &mut [f32], corrections: &mut [i32]) {
    let blocks = values.chunks_exact(BLOCK).zip(quants.chunks_exact_mut(BLOCK));
    for ((chunk, quants), (scale, correction)) in blocks.zip(scales.iter_mut().zip(corrections.iter_mut())) {
        *scale = quantize_block(chunk, quants);
        let mut sum = 0i32;
        for &q in quants.iter() {
            sum += i32::from(q);
        }
        *correction = -128 * sum;
    }
}

/// [`quantize_rows`] compiled with AVX2 (vector rounding instead of a library call per value).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quantize_rows_avx2(values: &[f32], quants: &mut [i8], scales: &mut [f32], corrections: &mut [i32]) {
    quantize_rows(values, quants, scales, corrections)
}

impl Q8Matrix {
    /// Quantizes a row-major `(rows, cols)` f32 matrix. `cols` must be a multiple of [`BLOCK`].
    pub fn from_f32(values: &[f32], rows: usize, cols: usize) -> Result<Self, String> {
        if cols == 0 || !cols.is_multiple_of(BLOCK) {
            return Err(format!("inner size {cols} is not a positive multiple of {BLOCK}"));
        }
        if values.len() != rows * cols {
            return Err(format!("{} values for a {rows}x{cols} matrix", values.len()));
        }
        let n_blocks = cols / BLOCK;
        let n_groups = rows.div_ceil(GROUP);
        let mut tiles = vec![128u8; n_groups * n_blocks * TILE_BYTES];
        let mut scales = vec![0f32; n_groups * n_blocks * GROUP];
        let mut quants = [0i8; BLOCK];
        for row in 0..rows {
            let (group, lane) = (row / GROUP, row % GROUP);
            for block in 0..n_blocks {
                let start = row * cols + block * BLOCK;
                let scale = quantize_block(&values[start..start + BLOCK], &mut quants);
                let tile_idx = group * n_blocks + block;
                scales[tile_idx * GROUP + lane] = scale;
                let tile = &mut tiles[tile_idx * TILE_BYTES..(tile_idx + 1) * TILE_BYTES];
                for (k, &q) in quants.iter().enumerate() {
                    tile[(k / 4) * 64 + lane * 4 + k % 4] = (i16::from(q) + 128) as u8;
                }
            }
        }
        Ok(Self { rows, cols, tiles, scales })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held (weights and scales).
    pub fn size_bytes(&self) -> usize {
        self.tiles.len() + self.scales.len() * 4
    }

    /// The quantized values back as a row-major f32 matrix (tests and diagnostics).
    pub fn dequantize(&self) -> Vec<f32> {
        let n_blocks = self.cols / BLOCK;
        let mut out = vec![0f32; self.rows * self.cols];
        for row in 0..self.rows {
            let (group, lane) = (row / GROUP, row % GROUP);
            for block in 0..n_blocks {
                let tile_idx = group * n_blocks + block;
                let scale = self.scales[tile_idx * GROUP + lane];
                let tile = &self.tiles[tile_idx * TILE_BYTES..];
                for k in 0..BLOCK {
                    let q = i32::from(tile[(k / 4) * 64 + lane * 4 + k % 4]) - 128;
                    out[row * self.cols + block * BLOCK + k] = q as f32 * scale;
                }
            }
        }
        out
    }

    fn n_blocks(&self) -> usize {
        self.cols / BLOCK
    }
}

/// Activations quantized for [`matmul`]: `n_rows` rows of `cols`, 8 bits per value in blocks of
/// 32 with one scale each, plus each block's correction for the weights' `+ 128` offset.
#[derive(Debug, Clone, Default)]
pub struct Q8Rows {
    pub(super) n_rows: usize,
    pub(super) cols: usize,
    pub(super) quants: Vec<i8>,
    pub(super) scales: Vec<f32>,
    /// `-128 · Σ q` per block.
    pub(super) corrections: Vec<i32>,
}

impl Q8Rows {
    /// Quantizes a row-major `(n_rows, cols)` matrix (`cols` a multiple of [`BLOCK`]).
    pub fn quantize(values: &[f32], cols: usize) -> Result<Self, String> {
        let mut rows = Self::default();
        rows.quantize_from(values, cols)?;
        Ok(rows)
    }

    /// [`Q8Rows::quantize`] reusing this value's buffers.
    pub fn quantize_from(&mut self, values: &[f32], cols: usize) -> Result<(), String> {
        if cols == 0 || !cols.is_multiple_of(BLOCK) || !values.len().is_multiple_of(cols) {
            return Err(format!("{} values do not form rows of {cols} (a multiple of {BLOCK})", values.len()));
        }
        let n_blocks_total = values.len() / BLOCK;
        self.n_rows = values.len() / cols;
        self.cols = cols;
        self.quants.resize(values.len(), 0);
        self.scales.resize(n_blocks_total, 0.0);
        self.corrections.resize(n_blocks_total, 0);
        match Isa::detect() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni | Isa::Avx512 | Isa::Avx2 => {
                // SAFETY: `Isa::detect` found AVX2 (every AVX-512 CPU has it).
                #[allow(unsafe_code)]
                unsafe {
                    quantize_rows_avx2(values, &mut self.quants, &mut self.scales, &mut self.corrections)
                }
            }
            _ => quantize_rows(values, &mut self.quants, &mut self.scales, &mut self.corrections),
        }
        Ok(())
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Block `x_block`'s 32 quantized values as 8 little-endian words of 4 bytes: what the
    /// kernels broadcast to every lane.
    #[inline(always)]
    pub(super) fn block_words(&self, x_block: usize) -> [i32; 8] {
        let mut words = [0i32; 8];
        for (word, bytes) in words.iter_mut().zip(self.quants[x_block * BLOCK..(x_block + 1) * BLOCK].chunks_exact(4)) {
            *word = i32::from_le_bytes([bytes[0] as u8, bytes[1] as u8, bytes[2] as u8, bytes[3] as u8]);
        }
        words
    }

    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// `out[m][r] = Σ_k x[m][k] · W[r][k]` on the quantized values: `out` is row-major
/// `(x.n_rows(), w.rows())`. Panics if the inner sizes differ or `out` has the wrong length.
pub fn matmul(w: &Q8Matrix, x: &Q8Rows, out: &mut [f32]) {
    assert_eq!(w.cols, x.cols, "inner sizes differ");
    run_by_groups(w.rows, w.cols, x.n_rows, out, |first_group, n, chunk| groups_kernel(w, x, first_group, n, chunk));
}

/// Drives a tiled kernel over all groups of a `(rows, cols)` weight matrix for `n_x_rows`
/// activation rows and scatters its `[group][m][lane]` results into the row-major `out`
/// (`(n_x_rows, rows)`). `kernel(first_group, n, chunk)` fills `chunk` for `n` groups. Large
/// products are split over rayon's threads, [`GROUPS_AT_ONCE`] groups per task.
pub(super) fn run_by_groups(
    rows: usize,
    cols: usize,
    n_x_rows: usize,
    out: &mut [f32],
    kernel: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    assert_eq!(out.len(), n_x_rows * rows, "output length");
    if n_x_rows == 0 || rows == 0 {
        return;
    }
    let n_groups = rows.div_ceil(GROUP);
    // Per group, the results of every x row: `[group][m][lane]`, written whole by the kernels.
    let mut by_group = vec![0f32; n_groups * n_x_rows * GROUP];
    let chunk_len = GROUPS_AT_ONCE * n_x_rows * GROUP;
    let run = |chunk_idx: usize, chunk: &mut [f32]| {
        kernel(chunk_idx * GROUPS_AT_ONCE, chunk.len() / (n_x_rows * GROUP), chunk);
    };
    if n_x_rows * rows * cols >= PARALLEL_MIN_WORK && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        by_group.par_chunks_mut(chunk_len).enumerate().for_each(|(chunk_idx, chunk)| run(chunk_idx, chunk));
    } else {
        for (chunk_idx, chunk) in by_group.chunks_mut(chunk_len).enumerate() {
            run(chunk_idx, chunk);
        }
    }
    for group in 0..n_groups {
        let lanes = GROUP.min(rows - group * GROUP);
        for m in 0..n_x_rows {
            let src = &by_group[(group * n_x_rows + m) * GROUP..][..lanes];
            out[m * rows + group * GROUP..][..lanes].copy_from_slice(src);
        }
    }
}

/// Products (rows × cols × x rows) from which [`matmul`] splits the work over rayon's threads:
/// a prompt, not a single decode step.
pub const PARALLEL_MIN_WORK: usize = 8 << 20;

/// Computes groups `first_group .. first_group + n` for every x row into `out`
/// (`[group][m][lane]`).
fn groups_kernel(w: &Q8Matrix, x: &Q8Rows, first_group: usize, n: usize, out: &mut [f32]) {
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => {
            // SAFETY: `Isa::detect` found AVX-512 F, BW, VL and VNNI on this CPU.
            #[allow(unsafe_code)]
            unsafe {
                vnni::groups(w, x, first_group, n, out)
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 => {
            // SAFETY: `Isa::detect` found AVX2 and FMA (every AVX-512 CPU has both).
            #[allow(unsafe_code)]
            unsafe {
                avx2::groups(w, x, first_group, n, out)
            }
        }
        _ => groups_portable(w, x, first_group, n, out),
    }
}

/// The portable kernel: the same arithmetic in plain loops.
pub(crate) fn groups_portable(w: &Q8Matrix, x: &Q8Rows, first_group: usize, n: usize, out: &mut [f32]) {
    let n_blocks = w.n_blocks();
    for group_offset in 0..n {
        let group = first_group + group_offset;
        for m in 0..x.n_rows {
            let mut acc = [0f32; GROUP];
            for block in 0..n_blocks {
                let tile_idx = group * n_blocks + block;
                let tile = &w.tiles[tile_idx * TILE_BYTES..(tile_idx + 1) * TILE_BYTES];
                let x_block = m * n_blocks + block;
                let xq = &x.quants[x_block * BLOCK..(x_block + 1) * BLOCK];
                let mut sums = [x.corrections[x_block]; GROUP];
                for (line, xq4) in tile.chunks_exact(64).zip(xq.chunks_exact(4)) {
                    for (sum, w4) in sums.iter_mut().zip(line.chunks_exact(4)) {
                        *sum += w4.iter().zip(xq4).map(|(&w, &x)| i32::from(w) * i32::from(x)).sum::<i32>();
                    }
                }
                let x_scale = x.scales[x_block];
                let scales = &w.scales[tile_idx * GROUP..(tile_idx + 1) * GROUP];
                for ((a, &sum), &scale) in acc.iter_mut().zip(&sums).zip(scales) {
                    *a += sum as f32 * (scale * x_scale);
                }
            }
            out[(group_offset * x.n_rows + m) * GROUP..][..GROUP].copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, GROUP, Q8Matrix, Q8Rows, TILE_BYTES};

    /// The AVX2 kernel: one group at a time, each 64-byte line as two 32-byte halves (rows 0..8
    /// and 8..16). The stored `q + 128` becomes `q` again (xor 0x80); `vpsignb` moves each
    /// activation's sign onto the weight, so `vpmaddubsw` takes `|x|` as its unsigned operand
    /// (pairs of `|x| · ±q` stay within 2 · 127 · 127, no 16-bit saturation) and `vpmaddwd` by
    /// ones sums the pairs into 32 bits. The sums are `Σ q · x` directly: no `+128` correction.
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn groups(w: &Q8Matrix, x: &Q8Rows, first_group: usize, n: usize, out: &mut [f32]) {
        let n_blocks = w.cols / BLOCK;
        let n_rows = x.n_rows;
        let flip = _mm256_set1_epi8(-128);
        let ones = _mm256_set1_epi16(1);
        for group_offset in 0..n {
            let group = first_group + group_offset;
            for m in 0..n_rows {
                let mut acc = [_mm256_setzero_ps(); 2];
                for block in 0..n_blocks {
                    let x_block = m * n_blocks + block;
                    let tile_idx = group * n_blocks + block;
                    let tile = &w.tiles[tile_idx * TILE_BYTES..(tile_idx + 1) * TILE_BYTES];
                    let mut sums = [_mm256_setzero_si256(); 2];
                    for (line, word) in x.block_words(x_block).into_iter().enumerate() {
                        let x4 = _mm256_set1_epi32(word);
                        let x_magnitude = _mm256_abs_epi8(x4);
                        for (half, sum) in sums.iter_mut().enumerate() {
                            let bytes = &tile[line * 64 + half * 32..][..32];
                            // SAFETY: `bytes` is 32 bytes long (sliced above); unaligned load.
                            let stored = unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) };
                            let signed = _mm256_sign_epi8(_mm256_xor_si256(stored, flip), x4);
                            let pairs = _mm256_maddubs_epi16(x_magnitude, signed);
                            *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(pairs, ones));
                        }
                    }
                    let x_scale = _mm256_set1_ps(x.scales[x_block]);
                    for (half, (acc, sum)) in acc.iter_mut().zip(sums).enumerate() {
                        let scales = &w.scales[tile_idx * GROUP + half * 8..][..8];
                        // SAFETY: `scales` holds 8 f32 (sliced above); unaligned load.
                        let scales = unsafe { _mm256_loadu_ps(scales.as_ptr()) };
                        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(scales, x_scale), *acc);
                    }
                }
                let dst = &mut out[(group_offset * n_rows + m) * GROUP..][..GROUP];
                // SAFETY: `dst` holds 16 f32 (sliced above); unaligned stores of 8 each.
                unsafe {
                    _mm256_storeu_ps(dst.as_mut_ptr(), acc[0]);
                    _mm256_storeu_ps(dst[8..].as_mut_ptr(), acc[1]);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{BLOCK, GROUP, GROUPS_AT_ONCE, Q8Matrix, Q8Rows, TILE_BYTES};

    /// The VNNI kernel: up to four groups at a time, one `vpdpbusd` per 64 weights.
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) fn groups(w: &Q8Matrix, x: &Q8Rows, first_group: usize, n: usize, out: &mut [f32]) {
        let mut done = 0;
        while done < n {
            let take = (n - done).min(GROUPS_AT_ONCE);
            match take {
                4 => groups_n::<4>(w, x, first_group + done, &mut out[done * x.n_rows * GROUP..]),
                3 => groups_n::<3>(w, x, first_group + done, &mut out[done * x.n_rows * GROUP..]),
                2 => groups_n::<2>(w, x, first_group + done, &mut out[done * x.n_rows * GROUP..]),
                _ => groups_n::<1>(w, x, first_group + done, &mut out[done * x.n_rows * GROUP..]),
            }
            done += take;
        }
    }

    #[allow(unsafe_code)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    fn groups_n<const N: usize>(w: &Q8Matrix, x: &Q8Rows, first_group: usize, out: &mut [f32]) {
        let n_blocks = w.cols / BLOCK;
        let n_rows = x.n_rows;
        for m in 0..n_rows {
            let mut acc = [_mm512_setzero_ps(); N];
            for block in 0..n_blocks {
                let x_block = m * n_blocks + block;
                let x4 = x.block_words(x_block);
                let correction = _mm512_set1_epi32(x.corrections[x_block]);
                let x_scale = _mm512_set1_ps(x.scales[x_block]);
                let mut sums = [correction; N];
                let mut tiles = [&w.tiles[..0]; N];
                for (g, tile) in tiles.iter_mut().enumerate() {
                    let tile_idx = (first_group + g) * n_blocks + block;
                    *tile = &w.tiles[tile_idx * TILE_BYTES..(tile_idx + 1) * TILE_BYTES];
                }
                for (line, &x4) in x4.iter().enumerate() {
                    let xb = _mm512_set1_epi32(x4);
                    for g in 0..N {
                        let bytes = &tiles[g][line * 64..line * 64 + 64];
                        // SAFETY: `bytes` is 64 bytes long (sliced above); unaligned load.
                        let weights = unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) };
                        sums[g] = _mm512_dpbusd_epi32(sums[g], weights, xb);
                    }
                }
                for g in 0..N {
                    let tile_idx = (first_group + g) * n_blocks + block;
                    let scales = &w.scales[tile_idx * GROUP..(tile_idx + 1) * GROUP];
                    // SAFETY: `scales` holds 16 f32 (sliced above); unaligned load.
                    let scales = unsafe { _mm512_loadu_ps(scales.as_ptr()) };
                    acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[g]), _mm512_mul_ps(scales, x_scale), acc[g]);
                }
            }
            for (g, acc) in acc.iter().enumerate() {
                let dst = &mut out[(g * n_rows + m) * GROUP..(g * n_rows + m + 1) * GROUP];
                // SAFETY: `dst` holds 16 f32 (sliced above); unaligned store.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), *acc) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::*;
    use crate::kernels::random_values as random;

    fn portable_matmul(w: &Q8Matrix, x: &Q8Rows) -> Vec<f32> {
        let mut out = vec![0f32; x.n_rows * w.rows];
        run_by_groups(w.rows, w.cols, x.n_rows, &mut out, |first, n, chunk| groups_portable(w, x, first, n, chunk));
        out
    }

    /// Against candle's Q8_0 × Q8_0 matmul on the same weights (which also quantizes the
    /// activations to Q8_0), for shapes with partial groups and 1 to 37 activation rows.
    #[test]
    fn matches_candle_q8_0_matmul_on_random_inputs() -> candle_core::Result<()> {
        let device = Device::Cpu;
        for (seed, (rows, cols, n_x)) in
            [(3, 64, 1), (16, 32, 1), (64, 576, 1), (70, 96, 5), (192, 576, 37), (100, 1536, 2)].into_iter().enumerate()
        {
            let weights = random(rows, cols, seed as u64);
            let inputs = random(n_x, cols, 100 + seed as u64);
            let matrix = Q8Matrix::from_f32(&weights, rows, cols).unwrap();
            let quantized = Q8Rows::quantize(&inputs, cols).unwrap();
            let mut out = vec![f32::NAN; n_x * rows];
            matmul(&matrix, &quantized, &mut out);
            let portable = portable_matmul(&matrix, &quantized);

            let w = Tensor::from_vec(weights.clone(), (rows, cols), &device)?;
            let x = Tensor::from_vec(inputs.clone(), (n_x, cols), &device)?;
            let candle = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0)?)?;
            let expected: Vec<f32> = candle.forward(&x)?.flatten_all()?.to_vec1()?;
            let exact: Vec<f32> = x.matmul(&w.t()?)?.flatten_all()?.to_vec1()?;
            let scale = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
            for idx in 0..out.len() {
                let (fast, slow) = (out[idx], portable[idx]);
                assert!((fast - slow).abs() <= 1e-4 * scale, "{rows}x{cols}: fast {fast} portable {slow}");
                // candle rounds its block scales to f16: close, not equal.
                assert!(
                    (fast - expected[idx]).abs() <= 1e-2 * scale,
                    "{rows}x{cols}: {fast} vs candle {}",
                    expected[idx]
                );
                assert!((fast - exact[idx]).abs() <= 2e-2 * scale, "{rows}x{cols}: {fast} vs f32 {}", exact[idx]);
            }
        }
        Ok(())
    }

    /// The AVX2 kernel (CPUs without AVX-512 VNNI) against the portable loops, when this CPU can
    /// run it; weights and activations at the ends of the range included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernel_matches_the_portable_one() {
        if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")) {
            return;
        }
        for (seed, (rows, cols, n_x)) in [(3, 64, 1), (70, 96, 5), (192, 576, 3)].into_iter().enumerate() {
            let mut weights = random(rows, cols, 20 + seed as u64);
            weights[0] = 100.0; // a block whose other values round to small q, one at +127
            weights[1] = -100.0;
            let mut inputs = random(n_x, cols, 30 + seed as u64);
            inputs[0] = -50.0; // -127 after quantization
            inputs[2] = 0.0;
            let matrix = Q8Matrix::from_f32(&weights, rows, cols).unwrap();
            let x = Q8Rows::quantize(&inputs, cols).unwrap();
            let mut out = vec![f32::NAN; n_x * rows];
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            #[allow(unsafe_code)]
            run_by_groups(rows, cols, n_x, &mut out, |first, n, chunk| unsafe {
                avx2::groups(&matrix, &x, first, n, chunk)
            });
            let expected = portable_matmul(&matrix, &x);
            let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in out.iter().zip(&expected) {
                assert!((a - b).abs() <= 1e-4 * scale, "{rows}x{cols}: avx2 {a} vs portable {b}");
            }
        }
    }

    #[test]
    fn large_products_split_over_threads_give_the_same_result() {
        let (rows, cols, n_x) = (256, 1536, 24);
        assert!(rows * cols * n_x >= PARALLEL_MIN_WORK);
        let matrix = Q8Matrix::from_f32(&random(rows, cols, 7), rows, cols).unwrap();
        let x = Q8Rows::quantize(&random(n_x, cols, 8), cols).unwrap();
        let mut out = vec![0f32; n_x * rows];
        matmul(&matrix, &x, &mut out);
        let portable = portable_matmul(&matrix, &x);
        for (a, b) in out.iter().zip(&portable) {
            assert!((a - b).abs() <= 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn quantization_round_trips_and_rejects_bad_shapes() {
        let weights = random(5, 64, 3);
        let matrix = Q8Matrix::from_f32(&weights, 5, 64).unwrap();
        for (a, b) in matrix.dequantize().iter().zip(&weights) {
            assert!((a - b).abs() <= 8.0 / 127.0 / 2.0 + 1e-6);
        }
        assert!(Q8Matrix::from_f32(&weights, 5, 60).is_err());
        assert!(Q8Matrix::from_f32(&weights[1..], 5, 64).is_err());
        assert!(Q8Rows::quantize(&weights[..33], 32).is_err());
        assert!(Q8Rows::quantize(&[], 0).is_err());
        // Zeros (a zero scale) give zeros, not NaN.
        let zeros = Q8Matrix::from_f32(&[0.0; 64], 2, 32).unwrap();
        let x = Q8Rows::quantize(&[0.0; 32], 32).unwrap();
        let mut out = [1f32; 2];
        matmul(&zeros, &x, &mut out);
        assert_eq!(out, [0.0, 0.0]);
        // No rows: nothing to do.
        let empty = Q8Rows::quantize(&[], 32).unwrap();
        matmul(&zeros, &empty, &mut []);
    }
}
