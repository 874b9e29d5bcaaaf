//! PostgreSQL for tests: a fresh database per test on the server named by
//! `TEST_POSTGRES_URL` (`.ci/run` starts one on a private port). Without it the
//! PostgreSQL half of a test says it was skipped, unless `TEST_POSTGRES_REQUIRED=1`
//! (set in CI), which makes a missing server a failure.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{PostgresSettings, Store};

pub const URL_VARIABLE: &str = "TEST_POSTGRES_URL";
pub const REQUIRE_VARIABLE: &str = "TEST_POSTGRES_REQUIRED";

/// The test server's address, if there is one.
pub fn server_url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let required = std::env::var(REQUIRE_VARIABLE).is_ok_and(|value| value != "0" && !value.is_empty());
            assert!(!required, "{REQUIRE_VARIABLE} is set but {URL_VARIABLE} is not: the PostgreSQL tests cannot run");
            eprintln!(
                "PostgreSQL tests skipped: set {URL_VARIABLE}=postgres://user@127.0.0.1:port/postgres to run them"
            );
            None
        }
    }
}

/// Settings for a database of its own on the test server (created now, empty).
pub fn fresh_database() -> Option<PostgresSettings> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let url = server_url()?;
    let name = format!(
        "sb_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
    );
    super::pg::create_database(&url, &name).unwrap_or_else(|error| panic!("creating test database {name}: {error}"));
    Some(PostgresSettings { url: with_database(&url, &name), pool_size: 8, ..PostgresSettings::default() })
}

/// `url` pointing at database `name` instead.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|at| at + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A migrated store on a fresh test database.
pub fn fresh_store() -> Option<Store> {
    let settings = fresh_database()?;
    Some(Store::postgres(&settings).expect("opening the test database"))
}

/// The backends a test runs on: a temporary sled store, and PostgreSQL when there is one.
pub fn every_backend() -> Vec<Store> {
    let mut stores = vec![Store::temporary().expect("a temporary sled store")];
    stores.extend(fresh_store());
    stores
}

/// Records migration `version` as applied, as a newer build would have.
pub fn mark_migrated_by_newer_build(settings: &PostgresSettings, version: i64) {
    execute(
        settings,
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ({version}, 'from a newer build', true, '\\x00', 0)"
        ),
    );
}

/// Runs one statement on the test database (states no build writes, sessions ended by force).
pub fn execute(settings: &PostgresSettings, statement: &str) {
    super::pg::execute(&settings.url, statement).unwrap_or_else(|error| panic!("{statement}: {error}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_path() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u:p@h/db?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
    }
}
