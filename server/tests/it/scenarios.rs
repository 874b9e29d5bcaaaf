//! Every scenario of `evals/scenarios/` (and its `blind/` to `blind4/` sets) played against the real engine, through the same code
//! as `switchboard eval scenarios`: models loaded once, extractive knowledge answers (no chat
//! model), a fresh account store per scenario.

use std::path::PathBuf;

use server::commands::scenarios;
use server::config::Settings;

fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../evals/scenarios")
}

#[test]
fn every_project_scenario_passes() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings::for_data_dir(data_dir.path());
    let started = std::time::Instant::now();
    // The project's scenarios and the blind set written from the tau2 tasks without reading the engine.
    let dirs = [
        scenario_dir(),
        scenario_dir().join("blind"),
        scenario_dir().join("blind2"),
        scenario_dir().join("blind3"),
        scenario_dir().join("blind4"),
    ];
    let report = scenarios::run_report(&settings, &dirs).expect("the scenarios load and run");
    assert!(report.results.len() >= 120, "only {} scenarios", report.results.len());
    let failed: Vec<_> = report.results.iter().filter(|result| !result.passed).collect();
    if !failed.is_empty() {
        let list: Vec<String> =
            failed.iter().map(|result| format!("- {}: {}", result.name, result.why().unwrap_or_default())).collect();
        let transcripts: String = failed.iter().map(|result| result.transcript()).collect::<Vec<_>>().join("\n");
        panic!(
            "{} of {} scenarios failed ({:.0} s):\n{}\n\n{transcripts}",
            failed.len(),
            report.results.len(),
            started.elapsed().as_secs_f64(),
            list.join("\n")
        );
    }
}

/// The same scenarios with every conversation, account and identity record in PostgreSQL (a
/// namespace of one database per scenario), when the tests have a server.
#[test]
fn every_project_scenario_passes_on_postgres() {
    let Some(postgres) = storage::testing::fresh_database() else { return };
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::for_data_dir(data_dir.path());
    settings.storage.backend = server::config::StorageBackend::Postgres;
    settings.storage.postgres.url = server::config::Secret::new(postgres.url);
    let dirs = [scenario_dir(), scenario_dir().join("blind"), scenario_dir().join("blind2")];
    let report = scenarios::run_report(&settings, &dirs).expect("the scenarios load and run");
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|result| !result.passed)
        .map(|result| format!("- {}: {}\n{}", result.name, result.why().unwrap_or_default(), result.transcript()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} scenarios failed on PostgreSQL:\n{}",
        failed.len(),
        report.results.len(),
        failed.join("\n")
    );
    assert!(report.results.len() >= 100, "only {} scenarios", report.results.len());
}

#[test]
fn bad_scenario_files_are_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("broken.yaml"), "name: x\naccounts: nowhere.toml\nopening: hi\n").unwrap();
    let error = scenarios::load(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(error.downcast_ref::<server::BadInput>().is_some(), "{error:#}");
    assert!(error.to_string().contains("broken.yaml: accounts:"), "{error}");

    // A scenario whose accounts file is not in the tau2 shape is refused before any model loads.
    std::fs::write(dir.path().join("accounts.toml"), "[[plans]]\nname = 3\n").unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "name: x\naccounts: accounts.toml\nopening: hi\n").unwrap();
    let error = scenarios::load(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(error.downcast_ref::<server::BadInput>().is_some(), "{error:#}");
    assert!(!error.to_string().contains('\n'), "one line: {error}");

    let empty = tempfile::tempdir().expect("temp dir");
    let error = scenarios::run(&Settings::for_data_dir(empty.path()), &[empty.path().to_path_buf()], true).unwrap_err();
    assert!(error.downcast_ref::<server::BadInput>().is_some(), "{error:#}");
}

#[test]
fn the_project_scenarios_parse_and_name_their_accounts() {
    let loaded = scenarios::load(&[scenario_dir()]).expect("the project scenarios are valid");
    assert!(loaded.len() >= 40);
    for scenario in &loaded {
        assert!(scenario.accounts.is_file(), "{}: {}", scenario.name, scenario.accounts.display());
    }
}
