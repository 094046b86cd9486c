//! `bessmon ledger export|import`: move a site's ledger between instances
//! (a site that changed shards), exact to the Wh and the day.
use std::path::PathBuf;

use super::{load_config, Failure, Outcome};
use crate::account::store::{self, Store};
use crate::account::transfer::LedgerFile;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a site's ledger (as last committed) to a file or stdout; works
    /// while the daemon runs.
    Export {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        #[arg(long)]
        site: String,
        /// Default: stdout.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Load an exported ledger into this instance's state directory; the
    /// daemon of this state directory must be stopped.
    Import {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        file: PathBuf,
        /// Replace a ledger the site already has here.
        #[arg(long)]
        replace: bool,
    },
}

pub fn run(a: Args) -> Outcome {
    match a.command {
        Command::Export {
            config,
            site,
            output,
        } => {
            let v = load_config(config.as_ref())?;
            let loaded = store::read_only(&v.daemon.state_dir, &site)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            if loaded.state.is_none() && loaded.days.is_empty() {
                return Err(Failure::input(format!(
                    "--site {site}: no ledger for it in {}",
                    v.daemon.state_dir.display()
                )));
            }
            let file = LedgerFile::from_loaded(&site, loaded, jiff::Timestamp::now());
            let text =
                serde_json::to_string_pretty(&file).map_err(|e| Failure::runtime(e.to_string()))?;
            match output {
                Some(path) => std::fs::write(&path, text + "\n")
                    .map_err(|e| Failure::runtime(format!("{}: {e}", path.display()))),
                None => {
                    println!("{text}");
                    Ok(())
                }
            }
        }
        Command::Import {
            config,
            file,
            replace,
        } => {
            let v = load_config(config.as_ref())?;
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::input(format!("{name}: {e}")))?;
            let parsed: LedgerFile = serde_json::from_str(&text)
                .map_err(|e| Failure::input(format!("{name}: not a ledger export: {e}")))?;
            let (site, loaded) = parsed
                .into_loaded()
                .map_err(|e| Failure::input(format!("{name}: {e}")))?;
            if !v.sites.iter().any(|s| *s.id == *site) {
                tracing::warn!(
                    "site {site} is not in {}: imported, but no daemon of this config will account it",
                    v.source
                );
            }
            let store = Store::open(&v.daemon.state_dir).map_err(|e| {
                Failure::runtime(format!(
                    "{e} (is the daemon of this state directory running? stop it first)"
                ))
            })?;
            let has = store
                .has(&site)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            if has && !replace {
                return Err(Failure::input(format!(
                    "site {site} already has a ledger in {}; --replace overwrites it",
                    v.daemon.state_dir.display()
                )));
            }
            store
                .replace(&site, &loaded)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            println!(
                "site {site}: {} days and {} demand months imported into {}",
                loaded.days.len(),
                loaded.months.len(),
                v.daemon.state_dir.display()
            );
            Ok(())
        }
    }
}
