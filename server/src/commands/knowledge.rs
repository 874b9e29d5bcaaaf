//! `switchboard ingest` / `eval retrieval` (being written).
use std::path::{Path, PathBuf};
pub fn ingest(_: &crate::config::Settings, _: &[PathBuf]) -> anyhow::Result<()> {
    anyhow::bail!("ingest is not built yet")
}
pub fn eval_retrieval(_: &crate::config::Settings, _: &Path, _: bool, _: bool) -> anyhow::Result<()> {
    anyhow::bail!("retrieval evaluation is not built yet")
}
