//! Wiring the account system from its settings: the store in the process's database,
//! the seed, the hooks.

use std::collections::BTreeMap;

use super::config::{AccountSettings, HookSettings};
use super::registry::{ActionRegistry, RegistryOptions};
use super::store::{AccountStore, ImportMode};
use super::{Hooks, Result, load_seed};

/// Opens the account store in `db`, imports `accounts.seed` when the store is empty, builds
/// the `[hooks.*]` of the configuration, and returns the registry the dialogue and the staff
/// API run actions through. The business date is `accounts.today` when set, else the data's
/// `[meta] today` when it has one, else the machine's date.
pub fn open_registry(
    db: &storage::Store,
    settings: &AccountSettings,
    hooks: &BTreeMap<String, HookSettings>,
) -> Result<ActionRegistry> {
    let store = AccountStore::open(db)?;
    if store.is_empty()? {
        let seed = load_seed(&settings.seed)?;
        store.import(&seed, ImportMode::Replace)?;
        tracing::info!(seed = %settings.seed, n_customers = seed.customers.len(), "seeded the account store");
    }
    let hooks = Hooks::from_settings(hooks)?;
    ActionRegistry::new(store, RegistryOptions { hooks, today: settings.today, ..RegistryOptions::default() })
}
