//! `switchboard eval scenarios` (being written).
use std::path::PathBuf;
pub fn run(_: &crate::config::Settings, _: &[PathBuf], _: bool) -> anyhow::Result<()> {
    anyhow::bail!("scenario evaluation is not built yet")
}
