//! `switchboard`: one binary for the server, the tools and the evaluations.

use std::process::ExitCode;

use clap::Parser;
use server::BadInput;
use server::cli::{
    AccountsCommand, AgentsCommand, BenchCommand, Cli, Command, EvalCommand, ModelsCommand, TrainCommand,
};
use server::commands;

fn main() -> ExitCode {
    // Thread counts of candle's kernels are read once per process: set them before anything else.
    inference::init_threads(inference::ThreadSettings::recommended());
    let cli = Cli::parse();
    let is_server = matches!(cli.command, None | Some(Command::Serve { .. }));
    server::telemetry::init(if is_server { "info" } else { "warn" });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<BadInput>().is_some() => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    let command = cli.command.unwrap_or(Command::Serve { addr: None });
    if let Command::Serve { addr } = command {
        return commands::serve::run(global.settings(addr)?);
    }
    let settings = global.settings(None)?;
    match command {
        Command::Serve { .. } => unreachable!("handled above"),
        Command::Models(ModelsCommand::Fetch) => commands::models::fetch(&settings),
        Command::Ingest { dirs } => commands::knowledge::ingest(&settings, &dirs),
        Command::Accounts(AccountsCommand::Import { file }) => commands::accounts::import(&settings, &file),
        Command::Train(TrainCommand::Intents { data, out, format, training }) => {
            commands::intents::train(&settings, &data, &out, format.as_deref(), &training)
        }
        Command::Eval(EvalCommand::Intents { train, test, format, json, training, dump_scores }) => {
            commands::intents::eval(
                &settings,
                &train,
                &test,
                format.as_deref(),
                json,
                &training,
                dump_scores.as_deref(),
            )
        }
        Command::Eval(EvalCommand::Retrieval { qa, json, compare }) => {
            commands::knowledge::eval_retrieval(&settings, &qa, json, compare)
        }
        Command::Eval(EvalCommand::Beir { dir, json, limit }) => commands::beir::run(&settings, &dir, json, limit),
        Command::Eval(EvalCommand::Scenarios { dirs, json }) => commands::scenarios::run(&settings, &dirs, json),
        Command::Eval(EvalCommand::Answers { file, json }) => commands::answers::run(&settings, &file, json),
        Command::Chat => commands::chat::run(&settings),
        Command::Migrate => commands::migrate::run(&settings),
        Command::Bench(BenchCommand::Embed { sentences, batch, json }) => {
            commands::bench::embed(&settings, &sentences, batch, json)
        }
        Command::Bench(BenchCommand::Generate { prompt_file, max_tokens, json }) => {
            commands::bench::generate(&settings, prompt_file.as_deref(), max_tokens, json)
        }
        Command::Bench(BenchCommand::Turns { rounds, json }) => commands::bench::turns(&settings, rounds, json),
        Command::Bench(BenchCommand::Load { urls, widget_secret, conversations, seconds, json }) => {
            commands::load::run(&urls, &widget_secret, conversations, seconds, json)
        }
        Command::Agents(AgentsCommand::Add { name, role }) => commands::agents::add(&settings, &name, &role),
    }
}
