//! `switchboard agents add` (being written).
pub fn add(_: &crate::config::Settings, _: &str, _: &str) -> anyhow::Result<()> {
    anyhow::bail!("console agents are not built yet")
}
