//! `switchboard accounts import FILE`: loads a tau2-shaped account database into the store
//! under the data dir (`DATA_DIR/accounts`), replacing the account records it held (the audit
//! log is kept). A file that does not parse or whose references do not resolve is bad input
//! (exit status 2) and leaves the store untouched.

use std::path::Path;

use anyhow::Context as _;

use crate::BadInput;
use crate::accounts::{AccountStore, AccountsData, Error, ImportMode};
use crate::config::Settings;

pub fn import(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let data = AccountsData::from_file(file).map_err(|error| BadInput(error.to_string()))?;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let store = AccountStore::open_in_data_dir(&settings.data_dir).map_err(|error| match error {
        Error::Locked(_) => anyhow::Error::new(error),
        other => anyhow::Error::new(other).context("opening the account store"),
    })?;
    store.import(&data, ImportMode::Replace).context("importing accounts")?;
    store.flush().context("flushing the account store")?;
    println!(
        "imported {} plans, {} customers, {} lines, {} devices, {} bills into {}",
        data.plans.len(),
        data.customers.len(),
        data.lines.len(),
        data.devices.len(),
        data.bills.len(),
        AccountStore::path_in_data_dir(&settings.data_dir).display()
    );
    Ok(())
}
