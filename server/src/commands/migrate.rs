//! `switchboard migrate`: applies the embedded PostgreSQL migrations not yet applied (every
//! start does the same, under a lock, so instances starting together migrate once) and prints
//! the schema version. With sled there is nothing to migrate: each store keeps its own version.

use crate::BadInput;
use crate::config::{Settings, StorageBackend};

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    match settings.storage.backend {
        StorageBackend::Sled => {
            println!("storage: sled in {} (no database schema to migrate)", settings.data_dir.display());
        }
        StorageBackend::Postgres => {
            if settings.storage.postgres.url.is_empty() {
                return Err(
                    BadInput("storage.postgres.url (or SWITCHBOARD_STORAGE__POSTGRES__URL) is not set".into()).into()
                );
            }
            let store = storage::Store::postgres_unmigrated(&settings.storage.postgres.to_storage())?;
            let before = store.schema_version()?;
            let after = store.migrate().map_err(|error| match error {
                storage::Error::SchemaTooNew { .. } => anyhow::Error::new(BadInput(error.to_string())),
                other => other.into(),
            })?;
            println!(
                "storage: postgres schema {after} (was {before}; this build knows up to {})",
                storage::MIGRATIONS_LATEST
            );
        }
    }
    Ok(())
}
