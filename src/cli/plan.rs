use std::path::PathBuf;

use super::{load_config, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
}

pub fn run(args: Args) -> Outcome {
    let v = load_config(args.config.as_ref())?;
    println!(
        "{:<28} {:>4} {:<5} {:<9} {:>3} {:>7} {:>5}  points",
        "device", "unit", "class", "table", "fc", "start", "count"
    );
    for d in v.devices() {
        let name = format!("{}/{}", d.site, d.id);
        for (class, reqs) in [
            ("fast", &d.profile.plan.fast),
            ("slow", &d.profile.plan.slow),
        ] {
            for r in reqs {
                let pts: Vec<&str> = r
                    .points
                    .iter()
                    .map(|&i| &*d.profile.points[i].name)
                    .collect();
                println!(
                    "{:<28} {:>4} {:<5} {:<9} {:>3} {:>#7x} {:>5}  {}",
                    name,
                    d.unit,
                    class,
                    r.table.to_string(),
                    r.table.function_code(),
                    r.start,
                    r.count,
                    pts.join(",")
                );
            }
        }
    }
    println!(
        "requests per poll: {} fast, slow adds {} every {} polls",
        v.requests_per_poll(),
        v.devices()
            .map(|d| d.profile.plan.slow.len())
            .sum::<usize>(),
        v.devices().next().map(|d| d.slow_every).unwrap_or(0)
    );
    Ok(())
}
