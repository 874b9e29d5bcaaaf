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
    let db = open_db(&settings.data_dir)?;
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

/// The process's sled database, `DATA_DIR/db` (the same path and lock message as
/// `app::open_db`, which this can call once `app` is back in the module tree).
fn open_db(data_dir: &Path) -> anyhow::Result<sled::Db> {
    let path = data_dir.join("db");
    sled::Config::new().path(&path).open().map_err(|error| match error {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.raw_os_error() == Some(11) => {
            anyhow::Error::new(BadInput(format!(
                "the data dir {} is in use by another switchboard process; stop it or pass --data-dir",
                data_dir.display()
            )))
        }
        other => anyhow::Error::new(other).context(format!("opening the database at {}", path.display())),
    })
}
