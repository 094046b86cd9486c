//! `bessmon discover`: finds a SunSpec device's models and writes a ready
//! profile for them, then reads it once so the first figures are on screen.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::read::{print_rows, read_once, DeviceAddress};
use super::{Failure, Outcome};
use crate::acquire::plausibility::Limits;
use crate::acquire::profile::Profile;
use crate::acquire::sunspec::{self, generate, model, Chain};
use crate::acquire::transport;
use crate::duration::parse_duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: DeviceAddress,
    #[arg(long, default_value = "1s")]
    pub timeout: String,
    /// Write the profile here; its id is the file's stem (`profiles/acme-pcs.toml`: `acme-pcs`).
    #[arg(long)]
    pub write_profile: Option<PathBuf>,
    /// The battery's rated power, to flag power beyond it.
    #[arg(long)]
    pub rated_kw: Option<f64>,
}

pub async fn run(a: Args) -> Outcome {
    let timeout =
        parse_duration(&a.timeout).map_err(|m| Failure::input(format!("--timeout: {m}")))?;
    let t = a.at.transport()?;
    let unit = a.at.unit;
    let id = match &a.write_profile {
        Some(path) => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Failure::input("--write-profile: give a file name such as acme-pcs.toml")
            })?,
        None => "discovered".to_string(),
    };
    let mut ctx = transport::connect(&t, timeout.max(Duration::from_secs(1)))
        .await
        .map_err(|e| Failure::runtime(format!("{}: {e}", t.key())))?;
    let mut dev = sunspec::OverModbus {
        ctx: &mut ctx,
        unit,
        timeout,
        must_drop: false,
    };
    let chain = sunspec::walk(&mut dev)
        .await
        .map_err(|m| Failure::runtime(format!("{} unit {}: {m}", t.key(), unit)))?;
    let who = identity(&mut dev, &chain).await;
    print_chain(&t.key(), unit, &chain, &who);
    let text = generate::profile_toml(&id, &chain, &who);
    let source = a
        .write_profile
        .clone()
        .unwrap_or_else(|| PathBuf::from("discovered.toml"));
    let profile = Profile::parse(&source, &text).map_err(|e| Failure {
        code: 2,
        lines: e
            .iter()
            .map(|e| format!("generated profile: {e}"))
            .collect(),
    })?;
    let profile = Arc::new(profile);
    let roles: Vec<String> = profile
        .points
        .iter()
        .filter_map(|p| p.role.map(|r| format!("{} = {}", r.name(), p.name)))
        .collect();
    println!("\nroles: {}", roles.join(", "));
    let mut rows = Vec::new();
    let failures = read_once(&mut ctx, &t, unit, &profile, timeout, &mut rows).await?;
    let limits = Limits {
        rated_kw: a.rated_kw,
        max_grid_kw: None,
    };
    let flagged = print_rows(&profile, &rows, &[], &limits);
    if flagged > 0 {
        println!("# {flagged} point(s) flagged");
    }
    match &a.write_profile {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| {
                Failure::runtime(format!("--write-profile {}: {e}", path.display()))
            })?;
            println!(
                "wrote {} ({} points); use it as `profile = \"{id}\"` with its directory in profile_dirs",
                path.display(),
                profile.points.len()
            );
        }
        None => println!("# --write-profile FILE writes this map as a profile"),
    }
    if failures > 0 {
        return Err(Failure::runtime(format!("{failures} request(s) failed")));
    }
    Ok(())
}

/// Manufacturer, model, version and serial from the common model, when the
/// device has one and answers; empty strings otherwise.
async fn identity(dev: &mut sunspec::OverModbus<'_>, chain: &Chain) -> generate::Identity {
    use crate::acquire::sunspec::Registers;
    let mut who = generate::Identity::default();
    let Some(common) = chain.first(1) else {
        return who;
    };
    let Ok(words) = dev.read(common.address, 2 + common.length.min(66)).await else {
        return who;
    };
    let text = |offset: usize, len: usize| -> String {
        let bytes: Vec<u8> = words
            .get(offset..offset + len)
            .unwrap_or(&[])
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .take_while(|b| *b != 0)
            .collect();
        String::from_utf8_lossy(&bytes).trim().to_string()
    };
    who.manufacturer = text(2, 16);
    who.model = text(18, 16);
    who.version = text(42, 8);
    who.serial = text(50, 16);
    who
}

fn print_chain(key: &str, unit: u8, chain: &Chain, who: &generate::Identity) {
    println!(
        "{key} unit {unit}: SunSpec marker at {}; {} {} serial {} version {}",
        chain.base, who.manufacturer, who.model, who.serial, who.version
    );
    println!("{:>6} {:>8} {:>7}  model", "id", "address", "length");
    for (i, e) in chain.models.iter().enumerate() {
        let repeat = chain.models[..i].iter().any(|f| f.id == e.id);
        let what = match model::model(e.id) {
            Some(m) if repeat => format!("{} (another instance: not mapped)", m.name),
            Some(m) => m.name.clone(),
            None => "(not mapped: unknown to bessmon)".into(),
        };
        println!("{:>6} {:>8} {:>7}  {what}", e.id, e.address, e.length);
    }
}
