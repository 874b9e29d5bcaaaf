//! `switchboard train intents` / `eval intents` (being written).
use std::path::Path;
pub fn train(_: &crate::config::Settings, _: &Path, _: &Path, _: Option<&str>, _: bool) -> anyhow::Result<()> {
    anyhow::bail!("intent training is not built yet")
}
pub fn eval(_: &crate::config::Settings, _: &Path, _: &Path, _: Option<&str>, _: bool, _: bool) -> anyhow::Result<()> {
    anyhow::bail!("intent evaluation is not built yet")
}
