//! `bessmon read`: one-shot commissioning read. Raw registers sit beside each
//! decoded value so a wrong word order or signedness shows at once.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{load_config, Failure, Outcome};
use crate::acquire::decode::{decode_reply, Decoded, Reply};
use crate::acquire::plausibility::{between_reads, implausible, Limits};
use crate::acquire::profile::{Profile, ProfileCatalog};
use crate::acquire::spec::Parity;
use crate::acquire::transport::{self, exception_text, CallError};
use crate::config::Transport;
use crate::duration::parse_duration;

/// A device named on the command line: TCP, RTU over TCP, or a serial port.
#[derive(Debug, clap::Args)]
pub struct DeviceAddress {
    /// Device host (Modbus TCP).
    #[arg(long, conflicts_with = "serial")]
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
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: DeviceAddress,
    /// Profile id (bundled, or in --profile-dir).
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(long)]
    pub profile_dir: Vec<PathBuf>,
    /// Or take everything from a config file and a device SITE/DEVICE.
    #[arg(short = 'c', long = "config", requires = "device", conflicts_with_all = ["host", "serial"])]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long, default_value = "1s")]
    pub timeout: String,
    /// Read this many times, --interval apart, and compare the reads: a
    /// counter going down or a 32-bit word order that looks swapped.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// The battery's rated power, to flag power beyond it (from the site with -c).
    #[arg(long)]
    pub rated_kw: Option<f64>,
}

/// One point as one read left it.
pub(super) struct Row {
    point: usize,
    words: Vec<u16>,
    raw: String,
    value: String,
    number: Option<f64>,
    flag: &'static str,
}

pub async fn run(a: Args) -> Outcome {
    let timeout =
        parse_duration(&a.timeout).map_err(|m| Failure::input(format!("--timeout: {m}")))?;
    let interval =
        parse_duration(&a.interval).map_err(|m| Failure::input(format!("--interval: {m}")))?;
    let mut limits = Limits {
        rated_kw: a.rated_kw,
        max_grid_kw: None,
    };
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
        if let Some(site) = v.sites.iter().find(|s| s.id == d.site) {
            limits.rated_kw = limits.rated_kw.or(Some(site.rated_power_kw));
            limits.max_grid_kw = Some(site.max_grid_kw);
        }
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
        let transport = a.at.transport()?;
        (transport, a.at.unit, profile, timeout)
    };

    let mut ctx = transport::connect(&transport, timeout.max(Duration::from_secs(1)))
        .await
        .map_err(|e| Failure::runtime(format!("{}: {e}", transport.key())))?;
    println!("{} unit {unit}, profile {}", transport.key(), profile.id);
    let profile = if profile.sunspec {
        at_device_addresses(&mut ctx, unit, &profile, timeout).await?
    } else {
        profile
    };
    let mut failures = 0;
    let mut first: Vec<Row> = Vec::new();
    let mut last: Vec<Row> = Vec::new();
    for round in 0..a.repeat {
        if round > 0 {
            tokio::time::sleep(interval).await;
        }
        let mut rows = Vec::new();
        failures += read_once(&mut ctx, &transport, unit, &profile, timeout, &mut rows).await?;
        if round == 0 {
            first = rows;
        } else {
            last = rows;
        }
    }
    let flagged = print_rows(&profile, &first, &last, &limits);
    if flagged > 0 {
        println!("# {flagged} point(s) flagged: check the profile's type, order, scale and role against the device's map");
    }
    if failures > 0 {
        return Err(Failure::runtime(format!("{failures} request(s) failed")));
    }
    Ok(())
}

/// The table of points as the last read left them, with what the reads say
/// against each point; the number of points flagged.
pub(super) fn print_rows(profile: &Profile, first: &[Row], last: &[Row], limits: &Limits) -> usize {
    let shown = if last.is_empty() { first } else { last };
    println!(
        "{:<24} {:<9} {:>7}  {:<24} {:>16} {:<6} flags",
        "point", "table", "address", "raw", "value", "unit"
    );
    let mut flagged = 0;
    for r in shown {
        let p = &profile.points[r.point];
        let mut flags: Vec<String> = Vec::new();
        if !r.flag.is_empty() {
            flags.push(r.flag.into());
        }
        if let Some(why) = r.number.and_then(|v| implausible(p, v, limits)) {
            flags.push(format!("implausible: {why}"));
        }
        if let Some(before) = first
            .iter()
            .find(|f| f.point == r.point && !last.is_empty())
        {
            flags.extend(between_reads(p, &before.words, &r.words));
        }
        flagged += usize::from(flags.iter().any(|f| f != "missing"));
        println!(
            "{:<24} {:<9} {:>#7x}  {:<24} {:>16} {:<6} {}",
            p.name,
            p.table.to_string(),
            p.address,
            r.raw,
            r.value,
            p.unit.as_deref().unwrap_or(""),
            flags.join("; ")
        );
    }
    flagged
}

/// Reads every request of the profile once; the number that failed.
pub(super) async fn read_once(
    ctx: &mut tokio_modbus::client::Context,
    t: &Transport,
    unit: u8,
    profile: &Profile,
    timeout: Duration,
    rows: &mut Vec<Row>,
) -> Result<u32, Failure> {
    let mut failures = 0;
    for req in profile.plan.requests(true) {
        match transport::read(ctx, unit, req, timeout).await {
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
                if !msg.starts_with("exception") {
                    *ctx = transport::connect(t, timeout.max(Duration::from_secs(1)))
                        .await
                        .map_err(|e| Failure::runtime(format!("{}: {e}", t.key())))?;
                }
            }
            Ok(reply) => {
                decode_reply(profile, req, &reply, |i, d| {
                    let p = &profile.points[i];
                    let off = (p.address - req.start) as usize;
                    let words: Vec<u16> = match &reply {
                        Reply::Words(w) => w[off..off + p.width as usize].to_vec(),
                        Reply::Bits(b) => vec![u16::from(b[off])],
                    };
                    let raw = match &reply {
                        Reply::Words(_) => words
                            .iter()
                            .map(|x| format!("{x:04x}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                        Reply::Bits(_) => words[0].to_string(),
                    };
                    let (value, number, flag) = match d {
                        Decoded::Value { value, valid, .. } => (
                            value.to_string(),
                            value.as_f64(),
                            if valid { "" } else { "invalid" },
                        ),
                        Decoded::Missing => ("-".into(), None, "missing"),
                    };
                    rows.push(Row {
                        point: i,
                        words,
                        raw,
                        value,
                        number,
                        flag,
                    });
                });
            }
        }
    }
    Ok(failures)
}

impl DeviceAddress {
    /// The transport the command line names.
    pub(super) fn transport(&self) -> Result<Transport, Failure> {
        Ok(match (&self.host, &self.serial) {
            (Some(host), _) if self.rtu_over_tcp => Transport::RtuOverTcp {
                host: host.clone(),
                port: self.port,
                close_after_poll: false,
                pause: None,
            },
            (Some(host), _) => Transport::Tcp {
                host: host.clone(),
                port: self.port,
                close_after_poll: false,
                pause: None,
            },
            (None, Some(path)) => Transport::Rtu {
                path: path.clone(),
                baud: self.baud,
                parity: Parity::parse(&self.parity).unwrap_or_default(),
                stop_bits: 1,
                data_bits: 8,
                pause: None,
            },
            (None, None) => {
                return Err(Failure::input(
                    "give --host, --serial, or -c FILE --device SITE/DEVICE",
                ))
            }
        })
    }
}

/// A `sunspec = true` profile moved to where this device's chain puts its models.
async fn at_device_addresses(
    ctx: &mut tokio_modbus::client::Context,
    unit: u8,
    profile: &Arc<Profile>,
    timeout: Duration,
) -> Result<Arc<Profile>, Failure> {
    let mut dev = crate::acquire::sunspec::OverModbus {
        ctx,
        unit,
        timeout,
        must_drop: false,
    };
    let chain = crate::acquire::sunspec::walk(&mut dev)
        .await
        .map_err(|m| Failure::runtime(format!("SunSpec: {m}")))?;
    println!("# SunSpec models {} from base {}", chain.ids(), chain.base);
    match crate::acquire::sunspec::resolve(profile, &chain) {
        Ok(Some(moved)) => {
            println!(
                "# the device's chain moves this profile's points; read at the device's addresses"
            );
            Ok(Arc::new(moved))
        }
        Ok(None) => Ok(profile.clone()),
        Err(m) => Err(Failure::runtime(format!("SunSpec: {m}"))),
    }
}
