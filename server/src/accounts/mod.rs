//! Account system: domain, store, actions, hooks.
