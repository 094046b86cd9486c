//! Command-line entry: one small file per command, each turning arguments into
//! calls of the parts of the flow. Exit codes: 0 ok, 1 invalid input, 2 runtime failure.
mod bench;
mod bench_outage;
mod check;
mod commission;
pub mod demo;
mod discover;
mod health;
pub mod journal;
mod ledger;
mod plan;
mod read;
mod replay;
mod report;
mod reprice;
mod run;
mod simulate;
mod statement;
mod tariff;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::validate::{load_and_validate, Validated};
use crate::config::ConfigSource;

#[derive(Debug, Parser)]
#[command(
    name = "bessmon",
    version,
    about = "Monitor for C&I battery storage: Modbus in, arbitrage savings out"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG also works.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run(run::Args),
    /// Validate config, profiles and tariffs; exit 1 listing every error.
    Check(check::Args),
    /// Built-in simulator and daemon in one process, nothing else needed.
    Demo(demo::Args),
    /// The BESS simulator as a Modbus TCP server.
    Simulate(simulate::Args),
    /// One-shot commissioning read: raw registers beside decoded values.
    Read(read::Args),
    /// Watch a site for a while and judge its maps: sign, counters, resolution.
    Commission(commission::Args),
    /// Find a SunSpec device's models and write a ready profile for them.
    Discover(discover::Args),
    /// The Modbus requests each device needs per poll.
    Plan(plan::Args),
    /// Time-of-use tariffs.
    Tariff(tariff::Args),
    /// Recompute a site's savings from a CSV history.
    Replay(replay::Args),
    /// Savings for a day, month, year or lifetime, from the ledger.
    Report(report::Args),
    /// Price booked energy again after a price correction (daemon stopped).
    Reprice(reprice::Args),
    /// A month's settlement statement (per-rate energy, money, contract split).
    Statement(statement::Args),
    /// Benchmarks (results go to BENCHMARKS.md).
    Bench(bench::Args),
    /// Ask a running daemon's /healthz; exit 0 when healthy (container healthchecks).
    Health(health::Args),
    /// Move a site's ledger between instances: export, import.
    Ledger(ledger::Args),
}

/// `-c FILE --site ID`: the site a ledger command works on.
#[derive(Debug, clap::Args)]
pub struct SiteArg {
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub site: String,
}

/// A command's failure: its exit code and what to tell the operator.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub lines: Vec<String>,
}

impl Failure {
    /// Every problem of a file that failed its checks, one line each.
    pub fn invalid(errs: &[crate::validation::ValidationError]) -> Self {
        Failure {
            code: 1,
            lines: errs.iter().map(|e| e.to_string()).collect(),
        }
    }

    pub fn input(msg: impl Into<String>) -> Self {
        Failure {
            code: 1,
            lines: vec![msg.into()],
        }
    }
    pub fn runtime(msg: impl Into<String>) -> Self {
        Failure {
            code: 2,
            lines: vec![msg.into()],
        }
    }
}

pub type Outcome = Result<(), Failure>;

pub fn init_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match (format, journal::stderr_is_journal()) {
        (LogFormat::Text, false) => builder.with_writer(std::io::stderr).try_init(),
        (LogFormat::Json, false) => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .try_init(),
        (LogFormat::Text, true) => builder
            .with_writer(journal::JournalWriter(std::io::stderr))
            .try_init(),
        (LogFormat::Json, true) => builder
            .with_writer(journal::JournalWriter(std::io::stderr))
            .json()
            .flatten_event(true)
            .try_init(),
    };
}

pub fn main(cli: Cli) -> i32 {
    init_logging(cli.log_format, &cli.log_level);
    let result = match cli.command {
        Command::Check(a) => check::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Tariff(a) => tariff::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Report(a) => report::run(a),
        Command::Statement(a) => statement::run(a),
        Command::Reprice(a) => reprice::run(a),
        Command::Read(a) => runtime().and_then(|rt| rt.block_on(read::run(a))),
        Command::Commission(a) => runtime().and_then(|rt| rt.block_on(commission::run(a))),
        Command::Discover(a) => runtime().and_then(|rt| rt.block_on(discover::run(a))),
        Command::Simulate(a) => runtime().and_then(|rt| rt.block_on(simulate::run(a))),
        Command::Demo(a) => runtime().and_then(|rt| rt.block_on(demo::run(a))),
        Command::Run(a) => runtime().and_then(|rt| rt.block_on(run::run(a))),
        Command::Bench(a) => bench::run(a),
        Command::Health(a) => health::run(a),
        Command::Ledger(a) => ledger::run(a),
    };
    match result {
        Ok(()) => 0,
        Err(f) => {
            // Under systemd, at error priority like the log records.
            let prefix = if journal::stderr_is_journal() {
                "<3>"
            } else {
                ""
            };
            for l in &f.lines {
                eprintln!("{prefix}error: {l}");
            }
            f.code
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))
}

pub fn find_site<'a>(
    v: &'a Validated,
    id: &str,
) -> Result<&'a crate::config::validate::SiteSpec, Failure> {
    v.sites
        .iter()
        .find(|s| *s.id == *id)
        .ok_or_else(|| Failure::input(format!("--site {id}: no such site in {}", v.source)))
}

pub fn parse_period(p: &str) -> Result<crate::account::report::Period, Failure> {
    p.parse()
        .map_err(|m| Failure::input(format!("--period: {m}")))
}

/// Loads and validates `-c`, printing warnings; errors become exit code 1.
pub fn load_config(path: Option<&PathBuf>) -> Result<Validated, Failure> {
    let source = ConfigSource::from_arg(path.map(|p| p.as_path()));
    let v = load_and_validate(&source).map_err(|lines| Failure { code: 1, lines })?;
    for w in &v.warnings {
        tracing::warn!("{w}");
    }
    Ok(v)
}
