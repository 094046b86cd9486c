//! `bessmon read`: one-shot commissioning read. Raw registers sit beside each
//! decoded value so a wrong word order or signedness shows at once.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{load_config, Failure, Outcome};
use crate::acquire::decode::{decode_reply, Decoded, Reply};
use crate::acquire::profile::{Profile, ProfileCatalog};
use crate::acquire::spec::Parity;
use crate::acquire::transport::{self, exception_text, CallError};
use crate::config::Transport;
use crate::duration::parse_duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Device host (Modbus TCP).
    #[arg(long, conflicts_with_all = ["config", "serial"])]
    pub host: Option<String>,
    #[arg(long, default_value_t = 502)]
    pub port: u16,
    /// Frame as RTU over the TCP connection (serial gateways in transparent mode).
    #[arg(long)]
    pub rtu_over_tcp: bool,
    /// Serial port for Modbus RTU.
    #[arg(long)]
    pub serial: Option<String>,
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    #[arg(long, default_value = "none", value_parser = ["none", "even", "odd"])]
    pub parity: String,
    #[arg(long, default_value_t = 1)]
    pub unit: u8,
    /// Profile id (bundled, or in --profile-dir).
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(long)]
    pub profile_dir: Vec<PathBuf>,
    /// Or take everything from a config file and a device SITE/DEVICE.
    #[arg(short = 'c', long = "config", requires = "device")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long, default_value = "1s")]
    pub timeout: String,
}

pub async fn run(a: Args) -> Outcome {
    let timeout =
        parse_duration(&a.timeout).map_err(|m| Failure::input(format!("--timeout: {m}")))?;
    let (transport, unit, profile, timeout) = if let Some(dev) = &a.device {
        let v = load_config(a.config.as_ref())?;
        let d = v
            .devices()
            .find(|d| format!("{}/{}", d.site, d.id) == *dev)
            .ok_or_else(|| {
                Failure::input(format!(
                    "--device {dev}: no such SITE/DEVICE in {}",
                    v.source
                ))
            })?;
        (d.transport.clone(), d.unit, d.profile.clone(), d.timeout)
    } else {
        let id = a
            .profile
            .clone()
            .ok_or_else(|| Failure::input("--profile is required with --host or --serial"))?;
        let profile: Arc<Profile> = match ProfileCatalog::new(&a.profile_dir).load(&id) {
            None => {
                return Err(Failure::input(format!(
                    "--profile {id}: not bundled and not in {:?}",
                    a.profile_dir
                )))
            }
            Some(Err(errs)) => {
                return Err(Failure {
                    code: 1,
                    lines: errs.iter().map(|e| e.to_string()).collect(),
                })
            }
            Some(Ok(p)) => p,
        };
        let transport = match (&a.host, &a.serial) {
            (Some(host), _) if a.rtu_over_tcp => Transport::RtuOverTcp {
                host: host.clone(),
                port: a.port,
                close_after_poll: false,
                pause: None,
            },
            (Some(host), _) => Transport::Tcp {
                host: host.clone(),
                port: a.port,
                close_after_poll: false,
                pause: None,
            },
            (None, Some(path)) => Transport::Rtu {
                path: path.clone(),
                baud: a.baud,
                parity: Parity::parse(&a.parity).unwrap_or_default(),
                stop_bits: 1,
                data_bits: 8,
                pause: None,
            },
            (None, None) => {
                return Err(Failure::input(
                    "give --host, --serial, or -c FILE --device SITE/DEVICE",
                ))
            }
        };
        (transport, a.unit, profile, timeout)
    };

    let mut ctx = transport::connect(&transport, timeout.max(Duration::from_secs(1)))
        .await
        .map_err(|e| Failure::runtime(format!("{}: {e}", transport.key())))?;
    println!("{} unit {unit}, profile {}", transport.key(), profile.id);
    println!(
        "{:<24} {:<9} {:>7}  {:<24} {:>16} {:<6} flags",
        "point", "table", "address", "raw", "value", "unit"
    );
    let mut failures = 0;
    for req in profile.plan.requests(true) {
        match transport::read(&mut ctx, unit, req, timeout).await {
            Err(e) => {
                failures += 1;
                let msg = match e {
                    CallError::Timeout => format!("no reply within {timeout:?}"),
                    CallError::Exception(c) => exception_text(c),
                    CallError::Transport(m) => m,
                };
                println!(
                    "# unit {unit} function {:#04x} address {:#06x} count {}: {msg}",
                    req.table.function_code(),
                    req.start,
                    req.count
                );
                if !matches!(msg.as_str(), m if m.starts_with("exception")) {
                    ctx = transport::connect(&transport, timeout.max(Duration::from_secs(1)))
                        .await
                        .map_err(|e| Failure::runtime(format!("{}: {e}", transport.key())))?;
                }
            }
            Ok(reply) => {
                decode_reply(&profile, req, &reply, |i, d| {
                    let p = &profile.points[i];
                    let off = (p.address - req.start) as usize;
                    let raw = match &reply {
                        Reply::Words(w) => w[off..off + p.width as usize]
                            .iter()
                            .map(|x| format!("{x:04x}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                        Reply::Bits(b) => format!("{}", b[off] as u8),
                    };
                    let (value, flags) = match d {
                        Decoded::Value { value, valid, .. } => {
                            (value.to_string(), if valid { "" } else { "invalid" })
                        }
                        Decoded::Missing => ("-".into(), "missing"),
                    };
                    println!(
                        "{:<24} {:<9} {:>#7x}  {:<24} {:>16} {:<6} {flags}",
                        p.name,
                        p.table.to_string(),
                        p.address,
                        raw,
                        value,
                        p.unit.as_deref().unwrap_or("")
                    );
                });
            }
        }
    }
    if failures > 0 {
        return Err(Failure::runtime(format!("{failures} request(s) failed")));
    }
    Ok(())
}
