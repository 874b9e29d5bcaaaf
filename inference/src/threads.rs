//! Thread settings of candle's CPU kernels, which are per process.
//!
//! candle reads two environment variables, each once, when its thread pools are first used:
//! - `CANDLE_NUM_THREADS`: the pool of quantized matmuls (the chat model) and of element-wise
//!   kernels;
//! - `RAYON_NUM_THREADS`: rayon's pool, used by the f32 matrix multiplications (the encoder).
//!
//! [`init_threads`] sets them to the measured best for this workload unless the operator already
//! set them. Call it first thing in `main`, before any thread is spawned and before any model
//! is loaded; later calls have no effect on pools that already exist.

use std::sync::Once;

/// Threads for candle's CPU kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadSettings {
    /// `CANDLE_NUM_THREADS`: quantized matmuls and element-wise kernels.
    pub candle_threads: usize,
    /// `RAYON_NUM_THREADS`: f32 matrix multiplications.
    pub rayon_threads: usize,
}

impl ThreadSettings {
    /// The measured best on a 2-core machine (see `BENCHMARKS.md`): quantized matmuls on one
    /// thread (with two, threads wait on each other for a model this small), f32 matmuls on all
    /// cores.
    pub fn recommended() -> Self {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        Self { candle_threads: 1, rayon_threads: cores }
    }
}

static INIT: Once = Once::new();

/// Sets candle's thread counts for this process, keeping any value already set in the
/// environment; returns the settings in effect. Call before spawning threads (see module docs).
pub fn init_threads(settings: ThreadSettings) -> ThreadSettings {
    INIT.call_once(|| {
        for (name, value) in
            [("CANDLE_NUM_THREADS", settings.candle_threads), ("RAYON_NUM_THREADS", settings.rayon_threads)]
        {
            if std::env::var_os(name).is_none() {
                // SAFETY: documented precondition: called at startup before other threads exist,
                // so nothing reads the environment concurrently.
                #[allow(unsafe_code)]
                unsafe {
                    std::env::set_var(name, value.max(1).to_string());
                }
            }
        }
    });
    current_threads()
}

/// The thread counts candle will use (from the environment, else its defaults).
pub fn current_threads() -> ThreadSettings {
    let read = |name: &str| std::env::var(name).ok().and_then(|value| value.parse::<usize>().ok()).filter(|n| *n > 0);
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let rayon_threads = read("RAYON_NUM_THREADS").unwrap_or(cores);
    ThreadSettings { candle_threads: read("CANDLE_NUM_THREADS").unwrap_or(rayon_threads), rayon_threads }
}
