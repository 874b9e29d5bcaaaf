//! `switchboard accounts import FILE`: loads a tau2-shaped account database into the account
//! trees of the data dir's database, replacing the account records they held (the audit log is
//! kept). A file that does not parse or whose references do not resolve is bad input (exit
//! status 2) and leaves the store untouched; so is a data dir in use by a running server.

use std::path::Path;

use anyhow::Context as _;

use crate::BadInput;
use crate::config::Settings;
use accounts::{AccountStore, AccountsData, ImportMode};

pub fn import(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let data = AccountsData::from_file(file).map_err(|error| BadInput(error.to_string()))?;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let db = crate::app::open_db(settings)?;
    let store = AccountStore::open(&db).context("opening the account store")?;
    store.import(&data, ImportMode::Replace).context("importing accounts")?;
    store.flush().context("flushing the account store")?;
    println!(
        "imported {} plans, {} customers, {} lines, {} devices, {} bills",
        data.plans.len(),
        data.customers.len(),
        data.lines.len(),
        data.devices.len(),
        data.bills.len(),
    );
    Ok(())
}
