//! Int4 × int8 matrix products on GGML's Q4_1 weights, exactly as the GGUF file stores them:
//! `out = x · Wᵀ` with each block of 32 weights `w = d · q + m` (`q` in 0..15, one f16 scale `d`
//! and one f16 minimum `m` per block) and `x` quantized to 8 bits in blocks of 32
//! ([`Q8Rows`], shared with the [`q8`](super::q8) kernel).
//!
//! Per block, `Σ w · x = d · dx · Σ q · xq + m · dx · Σ xq`: one integer dot product per row and
//! block plus the activation block's sum, which [`Q8Rows`] already keeps. The arithmetic is
//! llama.cpp's Q4_1 × Q8_1 dot product; this kernel reads 4.5 bits of weights (plus 0.5 of
//! scales) per product where the Q8 kernel reads 9, so a decode step, which streams every weight
//! once, moves about half the bytes.
//!
//! Layout ([`Q4Matrix`]): rows 16 at a time (a *group*, as in the Q8 kernel); for each group and
//! block one 320-byte tile: 4 lines of 64 bytes, where line `p`, row `r`, byte `t` holds
//! `q(r, 4p + t)` in its low nibble and `q(r, 16 + 4p + t)` in its high nibble (which is GGML's
//! own byte `qs[4p + t]` of the row's block, so tiles are built by copying), then the 16 rows'
//! scales `d` and minimums `m` as f16. With AVX-512 VNNI a line becomes two 64-byte vectors of
//! `q` (mask; shift and mask) and two `vpdpbusd` add 4 products each into 16 row sums; `q` is
//! already the unsigned operand `vpdpbusd` wants, so no offset needs undoing.
//!
//! [`matmul`] is the one entry point (any number of activation rows). CPUs with AVX2 but not
//! AVX-512 VNNI get the same arithmetic with `vpmaddubsw`/`vpmaddwd` on 32-byte halves; others
//! the portable loops.

use half::f16;

use super::Isa;
use super::q8::{BLOCK, GROUP, Q8Rows, run_by_groups};

/// Bytes of one block's stored Q4_1 data (f16 `d`, f16 `m`, 16 bytes of nibbles), GGML's
/// `block_q4_1`.
pub const Q4_1_BLOCK_BYTES: usize = 20;
const NIBBLE_BYTES: usize = GROUP * BLOCK / 2;
const SCALES_AT: usize = NIBBLE_BYTES;
const MINS_AT: usize = NIBBLE_BYTES + 2 * GROUP;
const TILE_BYTES: usize = NIBBLE_BYTES + 4 * GROUP;

/// A `(rows, cols)` weight matrix of Q4_1 blocks in the tiled layout of the module docs.
#[derive(Clone)]
pub struct Q4Matrix {
    rows: usize,
    cols: usize,
    /// `groups × blocks` tiles of [`TILE_BYTES`].
    tiles: Vec<u8>,
}

impl std::fmt::Debug for Q4Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Q4Matrix").field("rows", &self.rows).field("cols", &self.cols).finish_non_exhaustive()
    }
}

impl Q4Matrix {
    /// Builds the matrix from GGML Q4_1 data: `rows × cols / 32` blocks of
    /// [`Q4_1_BLOCK_BYTES`], row-major (what a GGUF file holds for a `(rows, cols)` tensor).
    pub fn from_q4_1(data: &[u8], rows: usize, cols: usize) -> Result<Self, String> {
        if cols == 0 || !cols.is_multiple_of(BLOCK) {
            return Err(format!("inner size {cols} is not a positive multiple of {BLOCK}"));
        }
        let n_blocks = cols / BLOCK;
        if data.len() != rows * n_blocks * Q4_1_BLOCK_BYTES {
            return Err(format!("{} bytes for a {rows}x{cols} Q4_1 matrix", data.len()));
        }
        let n_groups = rows.div_ceil(GROUP);
        // Rows past the end (a partial last group) stay zero: d = m = 0, no contribution.
        let mut tiles = vec![0u8; n_groups * n_blocks * TILE_BYTES];
        for (block_idx, stored) in data.chunks_exact(Q4_1_BLOCK_BYTES).enumerate() {
            let (row, block) = (block_idx / n_blocks, block_idx % n_blocks);
            let (group, lane) = (row / GROUP, row % GROUP);
            let tile = &mut tiles[(group * n_blocks + block) * TILE_BYTES..][..TILE_BYTES];
            tile[SCALES_AT + 2 * lane..][..2].copy_from_slice(&stored[0..2]);
            tile[MINS_AT + 2 * lane..][..2].copy_from_slice(&stored[2..4]);
            for (line, nibbles) in stored[4..].chunks_exact(4).enumerate() {
                tile[line * 64 + lane * 4..][..4].copy_from_slice(nibbles);
            }
        }
        Ok(Self { rows, cols, tiles })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held (nibbles, scales and minimums).
    pub fn size_bytes(&self) -> usize {
        self.tiles.len()
    }

    /// The weights as a row-major f32 matrix (`d · q + m`: tests and diagnostics).
    pub fn dequantize(&self) -> Vec<f32> {
        let n_blocks = self.cols / BLOCK;
        let mut out = vec![0f32; self.rows * self.cols];
        for row in 0..self.rows {
            let (group, lane) = (row / GROUP, row % GROUP);
            for block in 0..n_blocks {
                let tile = &self.tiles[(group * n_blocks + block) * TILE_BYTES..][..TILE_BYTES];
                let (scale, min) = lane_scale_and_min(tile, lane);
                for k in 0..BLOCK {
                    out[row * self.cols + block * BLOCK + k] = f32::from(nibble(tile, lane, k)) * scale + min;
                }
            }
        }
        out
    }
}

/// `q(lane, k)` of a tile.
fn nibble(tile: &[u8], lane: usize, k: usize) -> u8 {
    let byte = tile[(k % 16 / 4) * 64 + lane * 4 + k % 4];
    if k < 16 { byte & 0x0F } else { byte >> 4 }
}

fn lane_scale_and_min(tile: &[u8], lane: usize) -> (f32, f32) {
    let read = |at: usize| f16::from_le_bytes([tile[at + 2 * lane], tile[at + 2 * lane + 1]]).to_f32();
    (read(SCALES_AT), read(MINS_AT))
}

/// `out[m][r] = Σ_k x[m][k] · W[r][k]` on the quantized values: `out` is row-major
/// `(x.n_rows(), w.rows())`. Panics if the inner sizes differ or `out` has the wrong length.
pub fn matmul(w: &Q4Matrix, x: &Q8Rows, out: &mut [f32]) {
    assert_eq!(w.cols, x.cols, "inner sizes differ");
    run_by_groups(w.rows, w.cols, x.n_rows, out, |first_group, n, chunk| groups_kernel(w, x, first_group, n, chunk));
}

/// Computes groups `first_group .. first_group + n` for every x row into `out`
/// (`[group][m][lane]`).
fn groups_kernel(w: &Q4Matrix, x: &Q8Rows, first_group: usize, n: usize, out: &mut [f32]) {
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
        Isa::Avx512 | Isa::Avx2 if std::arch::is_x86_feature_detected!("f16c") => {
            // SAFETY: `Isa::detect` found AVX2 and FMA (every AVX-512 CPU has both), F16C was
            // just checked.
            #[allow(unsafe_code)]
            unsafe {
                avx2::groups(w, x, first_group, n, out)
            }
        }
        _ => groups_portable(w, x, first_group, n, out),
    }
}

/// The sum of a quantized activation block (its `Q8Rows` correction is `-128 ·` that sum).
fn block_sum(x: &Q8Rows, x_block: usize) -> i32 {
    -x.corrections[x_block] / 128
}

/// The portable kernel: the same arithmetic in plain loops.
pub(crate) fn groups_portable(w: &Q4Matrix, x: &Q8Rows, first_group: usize, n: usize, out: &mut [f32]) {
    let n_blocks = w.cols / BLOCK;
    for group_offset in 0..n {
        let group = first_group + group_offset;
        for m in 0..x.n_rows {
            let mut acc = [0f32; GROUP];
            for block in 0..n_blocks {
                let tile = &w.tiles[(group * n_blocks + block) * TILE_BYTES..][..TILE_BYTES];
                let x_block = m * n_blocks + block;
                let xq = &x.quants[x_block * BLOCK..(x_block + 1) * BLOCK];
                let x_scale = x.scales[x_block];
                let x_sum = block_sum(x, x_block) as f32;
                for (lane, acc) in acc.iter_mut().enumerate() {
                    let mut sum = 0i32;
                    for line in 0..4 {
                        let bytes = &tile[line * 64 + lane * 4..][..4];
                        for (t, &byte) in bytes.iter().enumerate() {
                            sum += i32::from(byte & 0x0F) * i32::from(xq[line * 4 + t]);
                            sum += i32::from(byte >> 4) * i32::from(xq[16 + line * 4 + t]);
                        }
                    }
                    let (scale, min) = lane_scale_and_min(tile, lane);
                    *acc += sum as f32 * (scale * x_scale) + min * (x_scale * x_sum);
                }
            }
            out[(group_offset * x.n_rows + m) * GROUP..][..GROUP].copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{BLOCK, GROUP, MINS_AT, Q4Matrix, Q8Rows, SCALES_AT, TILE_BYTES, block_sum};

    /// The VNNI kernel: one group at a time, two `vpdpbusd` per 64 bytes of weights. One group
    /// at a time reads the weights as one sequential stream; four at a time (as the int8 kernel
    /// does, where it pays) decoded at 165–170 tokens/s against 229 (2026-11-26, SmolLM2 Q4_1).
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) fn groups(w: &Q4Matrix, x: &Q8Rows, first_group: usize, n: usize, out: &mut [f32]) {
        let n_blocks = w.cols / BLOCK;
        let n_rows = x.n_rows;
        let low_nibbles = _mm512_set1_epi8(0x0F);
        for group_offset in 0..n {
            let group = first_group + group_offset;
            for m in 0..n_rows {
                let mut acc = _mm512_setzero_ps();
                for block in 0..n_blocks {
                    let x_block = m * n_blocks + block;
                    let x4 = x.block_words(x_block);
                    let tile = &w.tiles[(group * n_blocks + block) * TILE_BYTES..][..TILE_BYTES];
                    let mut sum = _mm512_setzero_si512();
                    for line in 0..4 {
                        let bytes = &tile[line * 64..line * 64 + 64];
                        // SAFETY: `bytes` is 64 bytes long (sliced above); unaligned load.
                        let packed = unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) };
                        let low = _mm512_and_si512(packed, low_nibbles);
                        let high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
                        sum = _mm512_dpbusd_epi32(sum, low, _mm512_set1_epi32(x4[line]));
                        sum = _mm512_dpbusd_epi32(sum, high, _mm512_set1_epi32(x4[line + 4]));
                    }
                    let scales = &tile[SCALES_AT..SCALES_AT + 2 * GROUP];
                    let mins = &tile[MINS_AT..MINS_AT + 2 * GROUP];
                    // SAFETY: `scales` and `mins` are 32 bytes (16 f16) each (sliced above);
                    // unaligned loads.
                    let (scales, mins) = unsafe {
                        (
                            _mm512_cvtph_ps(_mm256_loadu_si256(scales.as_ptr().cast())),
                            _mm512_cvtph_ps(_mm256_loadu_si256(mins.as_ptr().cast())),
                        )
                    };
                    let x_scale = x.scales[x_block];
                    let min_factor = _mm512_set1_ps(x_scale * block_sum(x, x_block) as f32);
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(scales, _mm512_set1_ps(x_scale)), acc);
                    acc = _mm512_fmadd_ps(mins, min_factor, acc);
                }
                let dst = &mut out[(group_offset * n_rows + m) * GROUP..][..GROUP];
                // SAFETY: `dst` holds 16 f32 (sliced above); unaligned store.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), acc) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, GROUP, MINS_AT, Q4Matrix, Q8Rows, SCALES_AT, TILE_BYTES, block_sum};

    /// The AVX2 kernel: one group at a time, each 64-byte line as two 32-byte halves (rows 0..8
    /// and 8..16); `vpmaddubsw` multiplies nibbles by activation bytes into 16-bit pairs (at most
    /// 2 · 15 · 127, no saturation) and `vpmaddwd` by ones sums the pairs into 32 bits.
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn groups(w: &Q4Matrix, x: &Q8Rows, first_group: usize, n: usize, out: &mut [f32]) {
        let n_blocks = w.cols / BLOCK;
        let n_rows = x.n_rows;
        let low_nibbles = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        for group_offset in 0..n {
            let group = first_group + group_offset;
            for m in 0..n_rows {
                let mut acc = [_mm256_setzero_ps(); 2];
                for block in 0..n_blocks {
                    let x_block = m * n_blocks + block;
                    let x4 = x.block_words(x_block);
                    let tile = &w.tiles[(group * n_blocks + block) * TILE_BYTES..][..TILE_BYTES];
                    let mut sums = [_mm256_setzero_si256(); 2];
                    for line in 0..4 {
                        let x_low = _mm256_set1_epi32(x4[line]);
                        let x_high = _mm256_set1_epi32(x4[line + 4]);
                        for (half, sum) in sums.iter_mut().enumerate() {
                            let bytes = &tile[line * 64 + half * 32..][..32];
                            // SAFETY: `bytes` is 32 bytes long (sliced above); unaligned load.
                            let packed = unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) };
                            let low = _mm256_and_si256(packed, low_nibbles);
                            let high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
                            let pairs =
                                _mm256_add_epi16(_mm256_maddubs_epi16(low, x_low), _mm256_maddubs_epi16(high, x_high));
                            *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(pairs, ones));
                        }
                    }
                    let x_scale = x.scales[x_block];
                    let x_scale_v = _mm256_set1_ps(x_scale);
                    let min_factor = _mm256_set1_ps(x_scale * block_sum(x, x_block) as f32);
                    for (half, (acc, sum)) in acc.iter_mut().zip(sums).enumerate() {
                        let scales = &tile[SCALES_AT + half * 16..][..16];
                        let mins = &tile[MINS_AT + half * 16..][..16];
                        // SAFETY: `scales` and `mins` are 16 bytes (8 f16) each (sliced above);
                        // unaligned loads.
                        let (scales, mins) = unsafe {
                            (
                                _mm256_cvtph_ps(_mm_loadu_si128(scales.as_ptr().cast())),
                                _mm256_cvtph_ps(_mm_loadu_si128(mins.as_ptr().cast())),
                            )
                        };
                        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(scales, x_scale_v), *acc);
                        *acc = _mm256_fmadd_ps(mins, min_factor, *acc);
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

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::super::q8::PARALLEL_MIN_WORK;
    use super::*;
    use crate::kernels::random_values as random;

    /// Candle's Q4_1 quantization of `values` and our matrix built from its bytes.
    fn quantized(values: &[f32], rows: usize, cols: usize) -> candle_core::Result<(QTensor, Q4Matrix)> {
        let tensor = Tensor::from_vec(values.to_vec(), (rows, cols), &Device::Cpu)?;
        let stored = QTensor::quantize(&tensor, GgmlDType::Q4_1)?;
        let matrix = Q4Matrix::from_q4_1(&stored.data()?, rows, cols).map_err(candle_core::Error::Msg)?;
        Ok((stored, matrix))
    }

    fn portable_matmul(w: &Q4Matrix, x: &Q8Rows) -> Vec<f32> {
        let mut out = vec![0f32; x.n_rows * w.rows];
        run_by_groups(w.rows, w.cols, x.n_rows, &mut out, |first, n, chunk| groups_portable(w, x, first, n, chunk));
        out
    }

    #[test]
    fn holds_exactly_the_stored_weights() -> candle_core::Result<()> {
        let (rows, cols) = (37, 96);
        let (stored, matrix) = quantized(&random(rows, cols, 1), rows, cols)?;
        let expected: Vec<f32> = stored.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        assert_eq!(matrix.dequantize(), expected);
        assert_eq!(matrix.size_bytes(), 3 * 3 * TILE_BYTES);
        Ok(())
    }

    /// Against candle's Q4_1 matmul (Q4_1 × Q8_1) and the exact product of the dequantized
    /// weights, for shapes with partial groups and 1 to 37 activation rows.
    #[test]
    fn matches_candle_q4_1_matmul_on_random_inputs() -> candle_core::Result<()> {
        let device = Device::Cpu;
        for (seed, (rows, cols, n_x)) in
            [(3, 64, 1), (16, 32, 1), (64, 576, 1), (70, 96, 5), (70, 128, 5), (192, 576, 37), (100, 1536, 2)]
                .into_iter()
                .enumerate()
        {
            let (stored, matrix) = quantized(&random(rows, cols, seed as u64), rows, cols)?;
            let inputs = random(n_x, cols, 100 + seed as u64);
            let activations = Q8Rows::quantize(&inputs, cols).unwrap();
            let mut out = vec![f32::NAN; n_x * rows];
            matmul(&matrix, &activations, &mut out);
            let portable = portable_matmul(&matrix, &activations);

            let x = Tensor::from_vec(inputs.clone(), (n_x, cols), &device)?;
            let exact_weights = stored.dequantize(&device)?;
            // candle's Q4_1 dot product wants an even number of blocks per row.
            let candle: Option<Vec<f32>> = if (cols / BLOCK).is_multiple_of(2) {
                Some(QMatMul::from_qtensor(stored)?.forward(&x)?.flatten_all()?.to_vec1()?)
            } else {
                None
            };
            let exact: Vec<f32> = x.matmul(&exact_weights.t()?)?.flatten_all()?.to_vec1()?;
            let scale = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
            for idx in 0..out.len() {
                let fast = out[idx];
                assert!(
                    (fast - portable[idx]).abs() <= 1e-4 * scale,
                    "{rows}x{cols}: {fast} vs portable {}",
                    portable[idx]
                );
                if let Some(candle) = &candle {
                    assert!(
                        (fast - candle[idx]).abs() <= 1e-2 * scale,
                        "{rows}x{cols}: {fast} vs candle {}",
                        candle[idx]
                    );
                }
                // Only the activations are rounded (8 bits; the random blocks have outliers).
                assert!((fast - exact[idx]).abs() <= 5e-2 * scale, "{rows}x{cols}: {fast} vs exact {}", exact[idx]);
            }
        }
        Ok(())
    }

    /// The AVX2 kernel (used on CPUs without AVX-512 VNNI) against the portable loops, when this
    /// CPU can run it.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernel_matches_the_portable_one() -> candle_core::Result<()> {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c"))
        {
            return Ok(());
        }
        for (rows, cols, n_x) in [(3, 64, 1), (70, 96, 5), (192, 576, 3)] {
            let (_, matrix) = quantized(&random(rows, cols, 11), rows, cols)?;
            let x = Q8Rows::quantize(&random(n_x, cols, 12), cols).unwrap();
            let mut out = vec![f32::NAN; n_x * rows];
            // SAFETY: the CPU has AVX2, FMA and F16C (checked above).
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
        Ok(())
    }

    #[test]
    fn large_products_split_over_threads_give_the_same_result() -> candle_core::Result<()> {
        let (rows, cols, n_x) = (256, 1536, 24);
        assert!(rows * cols * n_x >= PARALLEL_MIN_WORK);
        let (_, matrix) = quantized(&random(rows, cols, 7), rows, cols)?;
        let x = Q8Rows::quantize(&random(n_x, cols, 8), cols).unwrap();
        let mut out = vec![0f32; n_x * rows];
        matmul(&matrix, &x, &mut out);
        for (a, b) in out.iter().zip(&portable_matmul(&matrix, &x)) {
            assert!((a - b).abs() <= 1e-3, "{a} vs {b}");
        }
        Ok(())
    }

    #[test]
    fn rejects_bad_shapes_and_handles_zeros() -> candle_core::Result<()> {
        let (_, matrix) = quantized(&random(2, 64, 3), 2, 64)?;
        let bytes = 2 * 2 * Q4_1_BLOCK_BYTES;
        assert!(Q4Matrix::from_q4_1(&vec![0; bytes], 2, 60).is_err());
        assert!(Q4Matrix::from_q4_1(&vec![0; bytes - 1], 2, 64).is_err());
        assert!(Q4Matrix::from_q4_1(&[], 0, 0).is_err());
        // Zero weights: zeros out, not NaN.
        let zeros = Q4Matrix::from_q4_1(&vec![0; bytes], 2, 64).unwrap();
        let x = Q8Rows::quantize(&random(1, 64, 4), 64).unwrap();
        let mut out = [1f32; 2];
        matmul(&zeros, &x, &mut out);
        assert_eq!(out, [0.0, 0.0]);
        // No activation rows: nothing to do.
        let empty = Q8Rows::quantize(&[], 64).unwrap();
        matmul(&matrix, &empty, &mut []);
        Ok(())
    }
}
