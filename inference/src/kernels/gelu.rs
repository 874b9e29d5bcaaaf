//! The exact GELU, `0.5 · x · (1 + erf(x / √2))`, vectorised.
//!
//! `erf` is Eigen's rational approximation for `float` (`generic_fast_erf_float`, as used by
//! TensorFlow and PyTorch's vectorised CPU kernels): an odd polynomial over an even one on the
//! input clamped to [-4, 4] (beyond which `erf` is ±1 in f32); absolute error below 1e-6 (tested
//! against `libm`-quality `erf` below). Written as plain loops that the compiler vectorises, and
//! compiled three times (AVX-512, AVX2 + FMA, portable), chosen at run time.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::Isa;

const ALPHA: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.954_600_2e-3,
    -1.609_603_3e-2,
];
const BETA: [f32; 5] = [-1.456_607_2e-5, -2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_474e-2];

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `erf(x)` by Eigen's rational approximation.
#[inline(always)]
fn erf_approx<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ALPHA[0];
    for &alpha in &ALPHA[1..] {
        p = madd::<FMA>(x2, p, alpha);
    }
    let mut q = BETA[0];
    for &beta in &BETA[1..] {
        q = madd::<FMA>(x2, q, beta);
    }
    x * p / q
}

#[inline(always)]
fn gelu_slice<const FMA: bool>(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        let v = *x;
        *x = 0.5 * v * (1.0 + erf_approx::<FMA>(v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn gelu_avx512(xs: &mut [f32]) {
    gelu_slice::<true>(xs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_avx2(xs: &mut [f32]) {
    gelu_slice::<true>(xs)
}

/// The portable version (what the fast versions are tested against).
pub fn gelu_erf_portable(xs: &mut [f32]) {
    gelu_slice::<false>(xs)
}

/// Applies the exact GELU to every element of `xs`.
pub fn gelu_erf_in_place(xs: &mut [f32]) {
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni | Isa::Avx512 => {
            // SAFETY: `Isa::detect` found AVX-512 F (and FMA comes with it on every such CPU;
            // it is checked too).
            #[allow(unsafe_code)]
            if std::arch::is_x86_feature_detected!("fma") { unsafe { gelu_avx512(xs) } } else { gelu_erf_portable(xs) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: `Isa::detect` found AVX2 and FMA.
            #[allow(unsafe_code)]
            unsafe {
                gelu_avx2(xs)
            }
        }
        _ => gelu_erf_portable(xs),
    }
}

struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "switchboard-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("{} needs f32", self.name());
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{} needs a contiguous tensor", self.name());
        };
        let mut out = data[start..end].to_vec();
        gelu_erf_in_place(&mut out);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// The exact GELU of a tensor: the vectorised kernel for contiguous f32 CPU tensors that need no
/// gradient, candle's `gelu_erf` otherwise (it has a backward pass).
pub fn gelu_erf(xs: &Tensor) -> candle_core::Result<Tensor> {
    let fast = xs.device().is_cpu() && xs.dtype() == candle_core::DType::F32 && xs.is_contiguous() && !xs.track_op();
    if fast { xs.apply_op1_no_bwd(&GeluErf) } else { xs.gelu_erf() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 by its Taylor series (|x| < 3) or continued fraction (larger): reference only.
    fn erf_reference(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let mut sum = 0.0;
            let mut term = x;
            let mut n = 0.0;
            while term.abs() > 1e-17 {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -x * x / n;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc continued fraction (Lentz), accurate for |x| >= 3.
            let z = x.abs();
            let mut f = z;
            for k in (1..60).rev() {
                f = z + (k as f64 / 2.0) / f;
            }
            let erfc = (-z * z).exp() / (f * std::f64::consts::PI.sqrt());
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn erf_approximation_is_accurate_everywhere() {
        let mut worst: f64 = 0.0;
        for i in -100_000..=100_000 {
            let x = i as f32 * 1e-4 * 6.0;
            let error = (f64::from(erf_approx::<false>(x)) - erf_reference(f64::from(x))).abs();
            worst = worst.max(error);
        }
        assert!(worst < 1e-6, "worst absolute error {worst}");
    }

    #[test]
    fn every_isa_matches_candle_gelu_erf() -> candle_core::Result<()> {
        let device = candle_core::Device::Cpu;
        // Odd length: exercises the vector tails. Extreme values included.
        let mut values: Vec<f32> = Tensor::randn(0f32, 3.0, 4099, &device)?.to_vec1()?;
        values.extend([0.0, -0.0, 1e-8, -1e-8, 10.0, -10.0, 1e30, -1e30, f32::MAX, f32::MIN]);
        let input = Tensor::new(values.as_slice(), &device)?;
        let expected: Vec<f32> = input.gelu_erf()?.to_vec1()?;
        let mut portable = values.clone();
        gelu_erf_portable(&mut portable);
        let mut detected = values.clone();
        gelu_erf_in_place(&mut detected);
        let from_tensor: Vec<f32> = gelu_erf(&input)?.to_vec1()?;
        for actual in [&portable, &detected, &from_tensor] {
            for ((a, e), x) in actual.iter().zip(&expected).zip(&values) {
                let tolerance = 2e-6 * x.abs().max(1.0);
                assert!((a - e).abs() <= tolerance || (a.is_nan() && e.is_nan()), "gelu({x}) = {a}, candle {e}");
            }
        }
        Ok(())
    }

    #[test]
    fn empty_and_non_contiguous_inputs_work() -> candle_core::Result<()> {
        let device = candle_core::Device::Cpu;
        gelu_erf_in_place(&mut []);
        let matrix = Tensor::randn(0f32, 1.0, (3, 5), &device)?;
        let transposed = matrix.t()?;
        let difference = (gelu_erf(&transposed)? - transposed.gelu_erf()?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(difference < 1e-5);
        Ok(())
    }
}
