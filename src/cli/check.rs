use std::path::PathBuf;

use super::{Failure, Outcome};
use crate::config::validate::load_and_validate;
use crate::config::ConfigSource;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (default: $BESSMON_CONFIG, then /etc/bessmon/bessmon.toml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
}

pub fn run(args: Args) -> Outcome {
    let source = ConfigSource::from_arg(args.config.as_deref());
    match load_and_validate(&source) {
        Err(lines) => {
            let n = lines.len();
            let mut lines = lines;
            lines.push(format!(
                "{n} error{} in {}",
                if n == 1 { "" } else { "s" },
                source.name()
            ));
            Err(Failure { code: 1, lines })
        }
        Ok(v) => {
            for w in &v.warnings {
                println!("warning: {w}");
            }
            let devices = v.devices().count();
            let links = crate::acquire::links(v.devices()).len();
            let slow: usize = v.devices().map(|d| d.profile.plan.slow.len()).sum();
            println!("{}: valid", v.source);
            println!(
                "sites: {}, devices: {devices}, connections: {links}, requests per poll: {} (+{slow} slow)",
                v.sites.len(),
                v.requests_per_poll()
            );
            for s in &v.sites {
                println!(
                    "  {} ({}): tariff {}, {} kWh / {} kW, every {:?}, {} devices",
                    s.id,
                    s.name,
                    s.tariff.id,
                    s.capacity_kwh,
                    s.rated_power_kw,
                    s.poll_interval,
                    s.devices.len()
                );
            }
            Ok(())
        }
    }
}
