//! Checks a parsed [`Config`] and resolves it into the model the daemon runs on.
//! Every problem is collected, each naming the file and the key, so one
//! `bessmon check` shows them all. Each section has its own checks
//! (`daemon`, `mqtt`, `influx`, `sites`); this file puts them together.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::daemon::DaemonSettings;
use super::influx::InfluxSettings;
use super::mqtt::MqttSettings;
use super::sites::SiteChecks;
use super::Config;
pub use crate::account::site::SiteSpec;
pub use crate::acquire::spec::{DeviceSpec, Transport};
use crate::duration::{parse_bytes, parse_duration};
use crate::spool::Limits;
use crate::validation::ValidationError;

/// A config that passed every check: every duration parsed, every secret
/// read, every profile and tariff loaded. Nothing downstream reads the file's
/// strings again.
#[derive(Debug)]
pub struct Validated {
    pub source: String,
    pub daemon: DaemonSettings,
    pub mqtt: Option<MqttSettings>,
    pub influx: Option<InfluxSettings>,
    pub spool: Limits,
    pub sites: Vec<SiteSpec>,
    /// Sites of the configuration that other shards own: not polled here,
    /// but not gone either (their retained topics stay).
    pub elsewhere: Vec<SiteSpec>,
    /// Things that will work but probably are not what the operator meant.
    pub warnings: Vec<String>,
}

impl Validated {
    pub fn devices(&self) -> impl Iterator<Item = &Arc<DeviceSpec>> {
        self.sites.iter().flat_map(|s| s.devices.iter())
    }

    /// Keeps only the sites of one shard.
    pub fn retain_shard(&mut self, shard: super::shard::Shard) {
        let (mine, others) = std::mem::take(&mut self.sites)
            .into_iter()
            .partition(|s| shard.owns(&s.id));
        self.sites = mine;
        self.elsewhere.extend(others);
    }

    pub fn requests_per_poll(&self) -> usize {
        self.devices().map(|d| d.profile.plan.fast.len()).sum()
    }
}

/// Ids that are safe as MQTT topic levels and InfluxDB tag values.
pub(super) fn id_problem(id: &str) -> Option<String> {
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
    let mut warn = |w: String| warnings.push(format!("{source}: {w}"));

    let daemon = super::daemon::check(&config.daemon, &mut e, &mut warn);
    let mut files: Vec<(&str, &Option<PathBuf>)> =
        vec![("daemon.http_token_file", &config.daemon.http_token_file)];
    if let Some(m) = &config.mqtt {
        files.extend([
            ("mqtt.password_file", &m.password_file),
            ("mqtt.ca_file", &m.ca_file),
            ("mqtt.client_cert_file", &m.client_cert_file),
            ("mqtt.client_key_file", &m.client_key_file),
        ]);
    }
    if let Some(i) = &config.influxdb {
        files.extend([
            ("influxdb.token_file", &i.token_file),
            ("influxdb.password_file", &i.password_file),
        ]);
    }
    for (key, path) in files {
        let Some(p) = path.as_deref() else { continue };
        if super::secret::unverifiable(p) {
            warn(super::secret::warning(key, p));
        } else if !matches!(key, "mqtt.ca_file" | "mqtt.client_cert_file") {
            // Certificates are public; keys, passwords and tokens are not.
            if let Some(w) = super::secret::exposed(key, p) {
                warn(w);
            }
        }
    }
    let spool_max_bytes = parse_bytes(&config.spool.max_bytes).unwrap_or_else(|m| {
        e("spool.max_bytes".into(), m);
        0
    });
    let spool_max_age = parse_duration(&config.spool.max_age).unwrap_or_else(|m| {
        e("spool.max_age".into(), m);
        Duration::ZERO
    });
    let (instance, state_dir) = (&config.daemon.instance, &config.daemon.state_dir);
    // Ok(None): the section is absent; Err: it was reported.
    let mqtt = match &config.mqtt {
        None => Ok(None),
        Some(m) => super::mqtt::check(m, instance, state_dir, &mut e)
            .map(Some)
            .ok_or(()),
    };
    let influx = match &config.influxdb {
        None => Ok(None),
        Some(i) => super::influx::check(i, state_dir, &mut e)
            .map(Some)
            .ok_or(()),
    };

    if config.sites.is_empty() {
        e(
            "sites".into(),
            "no sites configured: add at least one [[sites]] table".into(),
        );
    }
    let mut checks = SiteChecks::new(
        &config.daemon.profile_dirs,
        &config.daemon.tariff_dirs,
        &mut warn,
    );
    let sites: Vec<SiteSpec> = config
        .sites
        .iter()
        .enumerate()
        .filter_map(|(si, s)| checks.site(si, s, &mut e))
        .collect();
    checks.finish(&mut warn);
    for (w, who) in tariff_warnings(&sites, jiff::Timestamp::now()) {
        warn(format!("sites {}: {w}", who.join(", ")));
    }
    errs.extend(checks.file_errors);
    match (daemon, mqtt, influx) {
        (Some(daemon), Ok(mqtt), Ok(influx)) if errs.is_empty() => Ok(Validated {
            source: source.to_string(),
            daemon,
            mqtt,
            influx,
            spool: Limits {
                max_bytes: spool_max_bytes,
                max_age: spool_max_age,
            },
            sites,
            elsewhere: Vec::new(),
            warnings,
        }),
        _ => Err(errs),
    }
}

/// What the sites' tariffs lack today (this month's prices, this year's
/// holidays), each message once with the sites it concerns.
pub fn tariff_warnings(
    sites: &[SiteSpec],
    now: jiff::Timestamp,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for s in sites {
        let today = s.tariff.tz.to_datetime(now).date();
        for w in s
            .tariff
            .missing_prices(today)
            .into_iter()
            .chain(s.tariff.missing_holidays(today.year()))
        {
            out.entry(w).or_default().push(s.id.to_string());
        }
    }
    out
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
        let m = v.mqtt.as_ref().unwrap();
        assert_eq!(m.savings_interval, Duration::from_secs(30));
        let d = v.devices().next().unwrap();
        assert_eq!(d.pause, Duration::from_millis(250));
        assert_eq!(d.timeout, Duration::from_millis(500));
        assert_eq!(v.sites[0].max_attribution_gap, Duration::from_secs(60));
    }

    fn errors_of(site_extra: &str) -> Vec<String> {
        let toml = format!(
            "[daemon]\nstate_dir = \"/tmp/unused\"\nprofile_dirs = []\ntariff_dirs = []\n\
             [[sites]]\nid = \"lab\"\ntariff = \"cn-chongqing-ci-2025-02\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\n{site_extra}\n\
             [[sites.devices]]\nid = \"pcs\"\nprofile = \"bessmon-sim-pcs\"\nunit = 1\n\
             transport = {{ type = \"tcp\", host = \"127.0.0.1\", port = 502 }}\n"
        );
        match load_and_validate(&super::super::ConfigSource::Inline {
            name: "t".into(),
            toml,
        }) {
            Ok(_) => Vec::new(),
            Err(e) => e,
        }
    }

    #[test]
    fn settlement_settings_are_checked_by_key() {
        assert!(errors_of("usable_kwh = 1800\nmeter_rates = [\"peak\", \"valley\"]").is_empty());
        let e = errors_of(
            "usable_kwh = 2500\nround_trip_efficiency = 1.2\nmax_cycles_per_day = 0\nreconcile_tolerance = 5\nmeter_rates = [\"peak\", \"deep\"]\n\
             [sites.contract]\nkind = \"share\"\nhost_share = 1.5",
        );
        let want = [
            "usable_kwh: 2500 must be positive and at most capacity_kwh (2000)",
            "round_trip_efficiency: 1.2 must be a fraction above 0 and at most 1",
            "max_cycles_per_day: 0 must be above 0 and at most 24",
            "reconcile_tolerance: 5 must be a fraction",
            "meter_rates[1]: `deep` is not a band of tariff `cn-chongqing-ci-2025-02`",
            "contract.host_share: 1.5 must be a fraction from 0 to 1",
        ];
        for w in want {
            assert!(e.iter().any(|x| x.contains(w)), "{w} not in {e:?}");
        }
    }
}
