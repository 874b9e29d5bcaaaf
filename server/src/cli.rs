//! The `switchboard` command line (names fixed in `interfaces.md`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Overrides, Settings};

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Customer-service AI for telecom operators, on your own machines")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (account store, knowledge index, conversations, trained models).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where fetched models live.
    #[arg(long, global = true, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the server (the built-in telco demo unless configured otherwise).
    Serve {
        /// Listen address, HOST:PORT.
        #[arg(long)]
        addr: Option<String>,
    },
    /// Model files.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Adds or updates knowledge documents in the knowledge index.
    Ingest {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// The account system.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Trains a model.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Evaluates a component.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// A chat in the terminal against the same engine as the server.
    Chat,
    /// Speed benchmarks of the models.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Human agents of the console.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Brings the database's schema up to date (PostgreSQL; also done at every start) and
    /// prints the version. A database a newer build migrated is refused.
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetches and verifies the pinned default models.
    Fetch,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Loads an account database in the tau2-bench telecom `db.toml` shape.
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Trains the intent classifier.
    Intents {
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// yaml, csv or clinc (default: from the file extension).
        #[arg(long)]
        format: Option<String>,
        #[command(flatten)]
        training: crate::commands::intents::IntentTrainingArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Trains on one file, scores on the other.
    Intents {
        #[arg(long, value_name = "FILE")]
        train: PathBuf,
        #[arg(long, value_name = "FILE")]
        test: PathBuf,
        /// yaml, csv or clinc (default: from the file extension).
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        training: crate::commands::intents::IntentTrainingArgs,
        /// Diagnostics: writes every training and test embedding with its gold class, and the
        /// class directions, as JSON lines (for comparing out-of-scope rules offline).
        #[arg(long, value_name = "FILE", hide = true)]
        dump_scores: Option<PathBuf>,
    },
    /// Scores retrieval on a QA file against the current knowledge index.
    Retrieval {
        #[arg(long, value_name = "FILE")]
        qa: PathBuf,
        #[arg(long)]
        json: bool,
        /// Also score lexical-only and vector-only search.
        #[arg(long)]
        compare: bool,
    },
    /// Measures retrieval on a BEIR-format dataset (corpus, queries, test judgements) in a fresh
    /// temporary index: nDCG@10, recall@1/5/10/100, MRR@10 and latency per search mode.
    Beir {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        /// Scores only the first N queries (the whole corpus is still indexed).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Runs scenario files against fresh copies of their accounts.
    Scenarios {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Asks every question of an answer file (JSON Lines) and judges the replies.
    Answers {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Embeds every line of FILE and reports throughput.
    Embed {
        #[arg(long, value_name = "FILE")]
        sentences: PathBuf,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long)]
        json: bool,
    },
    /// Greedy generation from a ChatML prompt; reports prompt and decode speed.
    Generate {
        #[arg(long, value_name = "FILE")]
        prompt_file: Option<PathBuf>,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        #[arg(long)]
        json: bool,
    },
    /// Whole turns through the engine: flow turns and knowledge questions, with stage times.
    Turns {
        /// Rounds of the script (after one warm-up round).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// Flow turns per second against running servers over HTTP: `--conversations` customers at
    /// once, each a signed-in web customer adding data to their line and declining at the
    /// confirmation, each message to the next `--url` in turn (several URLs: several instances
    /// behind a balancer). Reports turns per second, latency percentiles and the database round
    /// trips per turn the instances counted.
    Load {
        /// A server's base URL (repeat for several instances).
        #[arg(long = "url", required = true, value_name = "URL")]
        urls: Vec<String>,
        /// The servers' `widget.secret`, to sign the customers' identity.
        #[arg(long, env = "BENCH_WIDGET_SECRET")]
        widget_secret: String,
        /// Customers talking at the same time.
        #[arg(long, default_value_t = 64)]
        conversations: usize,
        /// Seconds measured (after a warm-up of a fifth of that, at most 5 s).
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Creates (or resets the password of) a console user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long, default_value = "agent")]
        role: String,
    },
}

impl GlobalArgs {
    pub fn settings(&self, addr: Option<String>) -> anyhow::Result<Settings> {
        let overrides = Overrides { data_dir: self.data_dir.clone(), models_dir: self.models_dir.clone(), addr };
        Settings::load(self.config.as_deref(), &overrides).map_err(|error| crate::BadInput(error.to_string()).into())
    }
}
