//! Hand-written CPU kernels for the hot spots that candle's generic kernels leave slow here.
//!
//! Each kernel sits behind a plain safe function over slices, picks its instruction set once at
//! run time ([`Isa::detect`]) and has a portable fallback that computes the same thing (the
//! fallback is also what the unit tests compare the fast paths against, next to candle's own
//! implementation). `unsafe` is confined to the `#[target_feature]` calls, each with its
//! SAFETY note: the caller checked that the CPU has the feature.
//!
//! - [`gelu`]: the exact (erf) GELU of BERT-family encoders, vectorised (candle computes `erf`
//!   one scalar at a time).
//! - [`q8`]: int8 weights × int8 activations matrix-vector and matrix-matrix products in a
//!   row-interleaved layout, with AVX-512 VNNI (`vpdpbusd`) or AVX2 (`vpmaddubsw`) where
//!   available: the chat model's output layer, and every product with `--format q8_0`.
//! - [`attention`]: one decode step's attention over a head's cached keys and values.
//! - [`q4`]: GGML Q4_1 weights (as the GGUF stores them) × int8 activations, same tiling and
//!   instructions, half the weight bytes of [`q8`].

pub mod attention;
pub mod gelu;
pub mod q4;
pub mod q8;

use std::sync::OnceLock;

/// The instruction sets the kernels know, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F/BW/VL with VNNI (int8 dot products).
    Avx512Vnni,
    /// AVX-512 F/BW/VL without VNNI.
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// Whatever the compiler targets by default.
    Portable,
}

impl Isa {
    /// The best instruction set of this CPU (detected once). `SWITCHBOARD_KERNELS=portable`
    /// forces the portable code, `SWITCHBOARD_KERNELS=avx2` the AVX2 code where the CPU has more
    /// (for comparisons: what a CPU without AVX-512 would run).
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let detected = detect_cpu();
            match std::env::var("SWITCHBOARD_KERNELS").as_deref() {
                Ok("portable") => Isa::Portable,
                Ok("avx2") if matches!(detected, Isa::Avx512Vnni | Isa::Avx512) => Isa::Avx2,
                _ => detected,
            }
        })
    }

    /// Short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512Vnni => "avx512-vnni",
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_cpu() -> Isa {
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl");
    if avx512 && std::arch::is_x86_feature_detected!("avx512vnni") {
        Isa::Avx512Vnni
    } else if avx512 {
        Isa::Avx512
    } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        Isa::Avx2
    } else {
        Isa::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_cpu() -> Isa {
    Isa::Portable
}

/// Seeded random values in [-1, 1), about 2% of them scaled by 8 (the outliers real weights and
/// activations have): the kernels' test inputs.
#[cfg(test)]
pub(crate) fn random_values(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..rows * cols).map(|_| rng.random_range(-1.0f32..1.0) * if rng.random_bool(0.02) { 8.0 } else { 1.0 }).collect()
}
