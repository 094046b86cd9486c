//! Checks a parsed [`Config`] and resolves it into the model the daemon runs on.
//! Every problem is collected, each naming the file and the key, so one
//! `bessmon check` shows them all.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Config;
pub use crate::account::site::SiteSpec;
use crate::account::tariff::{Tariff, TariffCatalog};
use crate::acquire::profile::{Profile, ProfileCatalog, Role};
pub use crate::acquire::spec::{DeviceSpec, Transport};
use crate::duration::{parse_bytes, parse_duration};
use crate::validation::ValidationError;

/// A config that passed every check.
#[derive(Debug)]
pub struct Validated {
    pub source: String,
    pub config: Config,
    pub sites: Vec<SiteSpec>,
    pub spool_max_bytes: u64,
    pub spool_max_age: Duration,
    /// How often MQTT wants each site's savings (`mqtt.savings_interval`).
    pub savings_interval: Option<Duration>,
    /// Things that will work but probably are not what the operator meant.
    pub warnings: Vec<String>,
}

impl Validated {
    pub fn devices(&self) -> impl Iterator<Item = &Arc<DeviceSpec>> {
        self.sites.iter().flat_map(|s| s.devices.iter())
    }

    /// Keeps only the sites of one shard.
    pub fn retain_shard(&mut self, shard: super::shard::Shard) {
        self.sites.retain(|s| shard.owns(&s.id));
    }

    pub fn requests_per_poll(&self) -> usize {
        self.devices().map(|d| d.profile.plan.fast.len()).sum()
    }
}

/// Ids that are safe as MQTT topic levels and InfluxDB tag values.
fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("must not be empty".into());
    }
    if id.len() > 64 {
        return Some("is longer than 64 characters".into());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Some(format!("`{id}` may hold only letters, digits, '-', '_' and '.' (it becomes an MQTT topic level)"));
    }
    None
}

pub fn validate(source: &str, config: Config) -> Result<Validated, Vec<ValidationError>> {
    let file = PathBuf::from(source);
    let mut errs = Vec::new();
    let mut warnings = Vec::new();
    let mut e = |key: String, msg: String| errs.push(ValidationError::new(&file, &key, msg));
    let mut savings_interval = None;

    if let Some(p) = id_problem(&config.daemon.instance) {
        e("daemon.instance".into(), p);
    }
    match config.daemon.http_listen.parse::<SocketAddr>() {
        Ok(a) if !a.ip().is_loopback() && config.daemon.http_token_file.is_none() => warnings.push(format!(
            "{source}: daemon.http_listen {a} is not loopback and no daemon.http_token_file is set: the API is open to the network"
        )),
        Ok(_) => {}
        Err(_) => e("daemon.http_listen".into(), format!("`{}` is not an address:port", config.daemon.http_listen)),
    }
    if config.daemon.sample_queue == 0 {
        e("daemon.sample_queue".into(), "must be at least 1".into());
    }
    let spool_max_bytes = parse_bytes(&config.spool.max_bytes).unwrap_or_else(|m| {
        e("spool.max_bytes".into(), m);
        0
    });
    let spool_max_age = parse_duration(&config.spool.max_age).unwrap_or_else(|m| {
        e("spool.max_age".into(), m);
        Duration::ZERO
    });
    if let Some(m) = &config.mqtt {
        if !(m.url.starts_with("mqtt://") || m.url.starts_with("mqtts://")) {
            e(
                "mqtt.url".into(),
                format!("`{}` must start with mqtt:// or mqtts://", m.url),
            );
        }
        if m.qos > 2 {
            e("mqtt.qos".into(), format!("{} is not 0, 1 or 2", m.qos));
        }
        if m.password.is_some() && m.password_file.is_some() {
            e(
                "mqtt.password_file".into(),
                "give either password (environment) or password_file, not both".into(),
            );
        }
        if let Some(p) = id_problem(&m.topic_prefix) {
            e("mqtt.topic_prefix".into(), p);
        }
        match parse_duration(&m.savings_interval) {
            Ok(d) => savings_interval = Some(d),
            Err(msg) => e("mqtt.savings_interval".into(), msg),
        }
        if (m.password.is_some() || m.password_file.is_some()) && m.username.is_none() {
            e("mqtt.username".into(), "a password needs a username".into());
        }
        // Secrets and certificates must be readable now, not at the first connect;
        // their contents are never printed.
        for (key, path) in [
            ("password_file", &m.password_file),
            ("ca_file", &m.ca_file),
            ("client_cert_file", &m.client_cert_file),
            ("client_key_file", &m.client_key_file),
        ] {
            if let Some(p) = path {
                if let Err(err) = std::fs::File::open(p) {
                    e(
                        format!("mqtt.{key}"),
                        format!("cannot read {}: {err}", p.display()),
                    );
                }
            }
        }
        if m.client_cert_file.is_some() != m.client_key_file.is_some() {
            e(
                "mqtt.client_key_file".into(),
                "client_cert_file and client_key_file go together".into(),
            );
        }
        if let Some(h) = &m.homeassistant {
            if let Some(p) = id_problem(&h.discovery_prefix) {
                e("mqtt.homeassistant.discovery_prefix".into(), p);
            }
        }
    }
    if let Some(i) = &config.influxdb {
        if !(i.url.starts_with("http://") || i.url.starts_with("https://")) {
            e(
                "influxdb.url".into(),
                format!("`{}` must start with http:// or https://", i.url),
            );
        }
        match i.api.as_str() {
            "v2" => {
                if i.bucket.is_none() {
                    e(
                        "influxdb.bucket".into(),
                        "api = \"v2\" needs a bucket".into(),
                    );
                }
            }
            "v1" => {
                if i.database.is_none() {
                    e(
                        "influxdb.database".into(),
                        "api = \"v1\" needs a database".into(),
                    );
                }
            }
            other => e(
                "influxdb.api".into(),
                format!("`{other}` is not \"v2\" or \"v1\""),
            ),
        }
        for (key, val) in [
            ("flush_interval", &i.flush_interval),
            ("connect_timeout", &i.connect_timeout),
            ("request_timeout", &i.request_timeout),
        ] {
            if let Err(msg) = parse_duration(val) {
                e(format!("influxdb.{key}"), msg);
            }
        }
        if i.batch_size == 0 {
            e("influxdb.batch_size".into(), "must be at least 1".into());
        }
        for (key, path) in [
            ("token_file", &i.token_file),
            ("password_file", &i.password_file),
        ] {
            if let Some(p) = path {
                if let Err(err) = std::fs::File::open(p) {
                    e(
                        format!("influxdb.{key}"),
                        format!("cannot read {}: {err}", p.display()),
                    );
                }
            }
        }
    }

    if config.sites.is_empty() {
        e(
            "sites".into(),
            "no sites configured: add at least one [[sites]] table".into(),
        );
    }
    let catalog = ProfileCatalog::new(&config.daemon.profile_dirs);
    for p in catalog.shadowed() {
        warnings.push(format!(
            "{}: ignored, a bundled profile of the same id is searched first; give yours another id",
            p.display()
        ));
    }
    let tariffs_catalog = TariffCatalog::new(&config.daemon.tariff_dirs);
    let mut tariffs: HashMap<String, Option<Arc<Tariff>>> = HashMap::new();
    let mut profiles: HashMap<String, Option<Arc<Profile>>> = HashMap::new();
    let mut profile_errs = Vec::new();
    let mut site_ids: HashMap<&str, usize> = HashMap::new();
    // transport key -> (unit -> device path); and serial settings per path
    let mut units: HashMap<String, HashMap<u8, String>> = HashMap::new();
    let mut serial: HashMap<String, (String, Transport)> = HashMap::new();
    let mut sites = Vec::new();

    for (si, s) in config.sites.iter().enumerate() {
        let sk = format!("sites[{si}] ({})", s.id);
        if let Some(p) = id_problem(&s.id) {
            e(format!("{sk}.id"), p);
        }
        if let Some(first) = site_ids.insert(&s.id, si) {
            e(
                format!("{sk}.id"),
                format!("duplicate site id (also sites[{first}])"),
            );
        }
        let tariff = tariffs
            .entry(s.tariff.clone())
            .or_insert_with(|| match tariffs_catalog.load(&s.tariff) {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(te)) => {
                    profile_errs.extend(te);
                    None
                }
            })
            .clone();
        if tariffs_catalog.find(&s.tariff).is_none() {
            e(
                format!("{sk}.tariff"),
                format!(
                    "no tariff `{}` among the bundled tariffs or in daemon.tariff_dirs {:?}",
                    s.tariff, config.daemon.tariff_dirs
                ),
            );
        }
        for (key, v) in [
            ("max_grid_kw", s.max_grid_kw),
            ("grid_capacity_kw", s.grid_capacity_kw),
        ] {
            if let Some(g) = v {
                if !(g.is_finite() && g > 0.0) {
                    e(
                        format!("{sk}.{key}"),
                        format!("{g} must be a positive number"),
                    );
                }
            }
        }
        if !(s.capacity_kwh.is_finite() && s.capacity_kwh > 0.0) {
            e(
                format!("{sk}.capacity_kwh"),
                format!("{} must be a positive number", s.capacity_kwh),
            );
        }
        if !(s.rated_power_kw.is_finite() && s.rated_power_kw > 0.0) {
            e(
                format!("{sk}.rated_power_kw"),
                format!("{} must be a positive number", s.rated_power_kw),
            );
        }
        let poll_interval = match parse_duration(&s.poll_interval) {
            Ok(d) if d >= Duration::from_millis(50) => d,
            Ok(_) => {
                e(
                    format!("{sk}.poll_interval"),
                    "must be at least 50ms".into(),
                );
                Duration::from_secs(1)
            }
            Err(m) => {
                e(format!("{sk}.poll_interval"), m);
                Duration::from_secs(1)
            }
        };
        let max_attribution_gap = match s.max_attribution_gap.as_deref().map(parse_duration) {
            None => (poll_interval * 3).max(Duration::from_secs(60)),
            Some(Ok(d)) if d >= poll_interval => d,
            Some(Ok(_)) => {
                e(
                    format!("{sk}.max_attribution_gap"),
                    format!(
                        "must be at least the poll interval ({}): readings a poll apart are never a gap",
                        s.poll_interval
                    ),
                );
                poll_interval
            }
            Some(Err(m)) => {
                e(format!("{sk}.max_attribution_gap"), m);
                poll_interval
            }
        };
        if s.slow_every == 0 {
            e(format!("{sk}.slow_every"), "must be at least 1".into());
        }
        if s.devices.is_empty() {
            e(
                format!("{sk}.devices"),
                "a site needs at least one device".into(),
            );
        }
        let mut dev_ids: HashMap<&str, usize> = HashMap::new();
        let mut roles: HashMap<Role, &str> = HashMap::new();
        let mut devices = Vec::new();
        for (di, d) in s.devices.iter().enumerate() {
            let dk = format!("{sk}.devices[{di}] ({})", d.id);
            if let Some(p) = id_problem(&d.id) {
                e(format!("{dk}.id"), p);
            }
            if let Some(first) = dev_ids.insert(&d.id, di) {
                e(
                    format!("{dk}.id"),
                    format!("duplicate device id in this site (also devices[{first}])"),
                );
            }
            let timeout = match parse_duration(&d.timeout) {
                Ok(t) if t.is_zero() => {
                    e(format!("{dk}.timeout"), "must be more than 0".into());
                    t
                }
                Ok(t) => {
                    if t >= poll_interval {
                        warnings.push(format!(
                            "{source}: {dk}.timeout {} is not shorter than the poll interval {}: one silent device will cost polls",
                            d.timeout, s.poll_interval
                        ));
                    }
                    t
                }
                Err(m) => {
                    e(format!("{dk}.timeout"), m);
                    Duration::from_secs(1)
                }
            };
            let pause = check_transport(&d.transport, d.unit, &dk, &mut e);
            let tkey = d.transport.key();
            let path = format!("{}/{}", s.id, d.id);
            if let Some(other) = units
                .entry(tkey.clone())
                .or_default()
                .insert(d.unit, path.clone())
            {
                e(
                    format!("{dk}.unit"),
                    format!("unit {} on {tkey} is already claimed by {other}", d.unit),
                );
            }
            if let Transport::Rtu { path: p, .. } = &d.transport {
                match serial.get(p) {
                    Some((other, t)) if !same_serial(t, &d.transport) => e(
                        format!("{dk}.transport"),
                        format!("serial settings for {p} differ from those of {other}; devices on one bus share them"),
                    ),
                    Some(_) => {}
                    None => {
                        serial.insert(p.clone(), (path.clone(), d.transport.clone()));
                    }
                }
            }
            let profile = profiles
                .entry(d.profile.clone())
                .or_insert_with(|| match catalog.load(&d.profile) {
                    None => None,
                    Some(Ok(p)) => Some(p),
                    Some(Err(pe)) => {
                        profile_errs.extend(pe);
                        None
                    }
                })
                .clone();
            if catalog.find(&d.profile).is_none() {
                e(
                    format!("{dk}.profile"),
                    format!(
                        "no profile `{}` among the bundled profiles or in daemon.profile_dirs {:?}",
                        d.profile, config.daemon.profile_dirs
                    ),
                );
            }
            if let Some(profile) = &profile {
                for p in profile.points.iter() {
                    let Some(r) = p.role.filter(|r| r.is_site_quantity()) else {
                        continue;
                    };
                    if let Some(other) = roles.insert(r, &d.id) {
                        e(
                            format!("{dk}.profile"),
                            format!("role {} is also provided by device `{other}`; a site takes each role from one device", r.name()),
                        );
                    }
                }
            }
            if let Some(profile) = profile {
                devices.push(Arc::new(DeviceSpec {
                    site: s.id.as_str().into(),
                    id: d.id.as_str().into(),
                    unit: d.unit,
                    profile,
                    transport: d.transport.clone(),
                    pause,
                    timeout,
                    poll_interval,
                    slow_every: s.slow_every.max(1),
                }));
            }
        }
        let Some(tariff) = tariff else { continue };
        sites.push(SiteSpec {
            id: s.id.as_str().into(),
            name: s.name.clone().unwrap_or_else(|| s.id.clone()),
            tariff,
            max_grid_kw: s.max_grid_kw.unwrap_or(4.0 * s.rated_power_kw),
            grid_capacity_kw: s.grid_capacity_kw,
            max_attribution_gap,
            capacity_kwh: s.capacity_kwh,
            rated_power_kw: s.rated_power_kw,
            poll_interval,
            devices,
        });
    }
    errs.extend(profile_errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Validated {
        source: source.to_string(),
        config,
        sites,
        spool_max_bytes,
        spool_max_age,
        savings_interval,
        warnings,
    })
}

fn same_serial(a: &Transport, b: &Transport) -> bool {
    match (a, b) {
        (
            Transport::Rtu {
                baud,
                parity,
                stop_bits,
                data_bits,
                ..
            },
            Transport::Rtu {
                baud: b2,
                parity: p2,
                stop_bits: s2,
                data_bits: d2,
                ..
            },
        ) => baud == b2 && parity == p2 && stop_bits == s2 && data_bits == d2,
        _ => false,
    }
}

/// Checks a transport and returns its pause between requests (zero without one).
fn check_transport(
    t: &Transport,
    unit: u8,
    dk: &str,
    e: &mut impl FnMut(String, String),
) -> Duration {
    let pause = match t {
        Transport::Tcp {
            host, port, pause, ..
        }
        | Transport::RtuOverTcp {
            host, port, pause, ..
        } => {
            if host.trim().is_empty() {
                e(format!("{dk}.transport.host"), "must not be empty".into());
            }
            if *port == 0 {
                e(format!("{dk}.transport.port"), "must not be 0".into());
            }
            if matches!(t, Transport::RtuOverTcp { .. }) && !(1..=247).contains(&unit) {
                e(
                    format!("{dk}.unit"),
                    format!("{unit} is not a serial slave address (1..=247)"),
                );
            }
            pause
        }
        Transport::Rtu {
            path,
            baud,
            stop_bits,
            data_bits,
            pause,
            ..
        } => {
            if path.trim().is_empty() {
                e(format!("{dk}.transport.path"), "must not be empty".into());
            }
            if *baud == 0 {
                e(format!("{dk}.transport.baud"), "must be more than 0".into());
            }
            if !matches!(stop_bits, 1 | 2) {
                e(
                    format!("{dk}.transport.stop_bits"),
                    format!("{stop_bits} is not 1 or 2"),
                );
            }
            if !(5..=8).contains(data_bits) {
                e(
                    format!("{dk}.transport.data_bits"),
                    format!("{data_bits} is not 5..=8"),
                );
            }
            if !(1..=247).contains(&unit) {
                e(
                    format!("{dk}.unit"),
                    format!("{unit} is not a serial slave address (1..=247)"),
                );
            }
            pause
        }
    };
    match pause.as_deref().map(parse_duration) {
        Some(Ok(d)) => d,
        Some(Err(m)) => {
            e(format!("{dk}.transport.pause"), m);
            Duration::ZERO
        }
        None => Duration::ZERO,
    }
}

/// A validated configuration from TOML text: `sections` go before the sites,
/// and one site `lab` reads the simulator's PCS on 127.0.0.1:502 with
/// `transport_extra` inside its transport table. For unit tests.
#[cfg(test)]
pub(crate) fn lab_config(sections: &str, transport_extra: &str) -> Validated {
    let toml = format!(
        "[daemon]\nstate_dir = \"/tmp/unused\"\nprofile_dirs = []\ntariff_dirs = []\n{sections}\n\
         [[sites]]\nid = \"lab\"\ntariff = \"cn-chongqing-ci-2025-02\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\n\
         [[sites.devices]]\nid = \"pcs\"\nprofile = \"bessmon-sim-pcs\"\nunit = 1\ntimeout = \"500ms\"\n\
         transport = {{ type = \"tcp\", host = \"127.0.0.1\", port = 502{transport_extra} }}\n"
    );
    load_and_validate(&super::ConfigSource::Inline {
        name: "t".into(),
        toml,
    })
    .unwrap()
}

/// Loads and validates in one step; the error list covers both.
pub fn load_and_validate(source: &super::ConfigSource) -> Result<Validated, Vec<String>> {
    let cfg = super::load(source).map_err(|e| vec![e.to_string()])?;
    validate(&source.name(), cfg).map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_reach_the_running_parts_parsed() {
        let v = lab_config(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nsavings_interval = \"30s\"",
            ", pause = \"250ms\"",
        );
        assert_eq!(v.savings_interval, Some(Duration::from_secs(30)));
        let d = v.devices().next().unwrap();
        assert_eq!(d.pause, Duration::from_millis(250));
        assert_eq!(d.timeout, Duration::from_millis(500));
        assert_eq!(v.sites[0].max_attribution_gap, Duration::from_secs(60));
    }
}
