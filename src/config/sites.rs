//! `[[sites]]` and their devices checked and resolved: tariffs and profiles
//! loaded (each once, however many sites use it), durations parsed, and the
//! rules that span devices enforced (one unit per bus address, one set of
//! serial settings per port, one device per site quantity).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::validate::id_problem;
use super::{Device, Site, TariffChoice};
use crate::account::site::{Settle, SiteSpec};
use crate::account::tariff::{Tariff, TariffCatalog};
use crate::acquire::profile::{Profile, ProfileCatalog};
use crate::acquire::spec::{DeviceSpec, Transport};
use crate::duration::parse_duration;
use crate::role::Role;
use crate::validation::ValidationError;

/// What the checks of one site need to know about all the others.
pub struct SiteChecks<'a> {
    profile_dirs: &'a [PathBuf],
    tariff_dirs: &'a [PathBuf],
    profiles_catalog: ProfileCatalog,
    tariffs_catalog: TariffCatalog,
    /// Loaded once per id; None when it failed (its errors are in `file_errors`).
    tariffs: HashMap<String, Option<Arc<Tariff>>>,
    profiles: HashMap<String, Option<Arc<Profile>>>,
    /// Errors inside profile and tariff files, which name those files.
    pub file_errors: Vec<ValidationError>,
    site_ids: HashMap<String, usize>,
    /// transport key -> (unit -> SITE/DEVICE)
    units: HashMap<String, HashMap<u8, String>>,
    /// serial port -> (SITE/DEVICE that set it first, its transport)
    serial: HashMap<String, (String, Transport)>,
    /// Unverified profile id -> (its source, the devices that use it).
    unverified: std::collections::BTreeMap<String, (Option<String>, Vec<String>)>,
    /// (timeout, poll interval) -> the devices whose timeout is not shorter
    /// than their poll interval: one warning per pair, not per device.
    slow_timeouts: std::collections::BTreeMap<(String, String), Vec<String>>,
}

impl<'a> SiteChecks<'a> {
    pub fn new(
        profile_dirs: &'a [PathBuf],
        tariff_dirs: &'a [PathBuf],
        warn: &mut impl FnMut(String),
    ) -> Self {
        let profiles_catalog = ProfileCatalog::new(profile_dirs);
        for p in profiles_catalog.shadowed() {
            warn(format!(
                "{}: ignored, a bundled profile of the same id is searched first; give yours another id",
                p.display()
            ));
        }
        SiteChecks {
            profile_dirs,
            tariff_dirs,
            profiles_catalog,
            tariffs_catalog: TariffCatalog::new(tariff_dirs),
            tariffs: HashMap::new(),
            profiles: HashMap::new(),
            file_errors: Vec::new(),
            site_ids: HashMap::new(),
            units: HashMap::new(),
            serial: HashMap::new(),
            slow_timeouts: Default::default(),
            unverified: Default::default(),
        }
    }

    /// The warnings that sum up many devices, once every site is checked.
    pub fn finish(&mut self, warn: &mut impl FnMut(String)) {
        for (id, (source, devices)) in std::mem::take(&mut self.unverified) {
            warn(format!(
                "{}: profile `{id}` is unverified ({}): compare its values with the device's display using `bessmon read`, and run `bessmon commission`, before trusting the ledger",
                devices.join(", "),
                source.as_deref().unwrap_or("no source named")
            ));
        }
        for ((timeout, poll), devices) in std::mem::take(&mut self.slow_timeouts) {
            let who = match devices.len() {
                1 => format!("{}.timeout", devices[0]),
                n => format!("{n} devices' timeout (first {}.timeout)", devices[0]),
            };
            warn(format!(
                "{who} {timeout} is not shorter than the poll interval {poll}: one silent device will cost polls"
            ));
        }
    }

    fn tariff(&mut self, id: &str) -> Option<Arc<Tariff>> {
        let catalog = &self.tariffs_catalog;
        loaded(&mut self.tariffs, &mut self.file_errors, id, || {
            catalog.load(id)
        })
    }

    fn profile(&mut self, id: &str) -> Option<Arc<Profile>> {
        let catalog = &self.profiles_catalog;
        loaded(&mut self.profiles, &mut self.file_errors, id, || {
            catalog.load(id)
        })
    }

    /// Checks site number `si`; its spec unless its tariff is unusable.
    pub fn site(
        &mut self,
        si: usize,
        s: &Site,
        e: &mut impl FnMut(String, String),
    ) -> Option<SiteSpec> {
        let sk = format!("sites[{si}] ({})", s.id);
        if let Some(p) = id_problem(&s.id) {
            e(format!("{sk}.id"), p);
        }
        if let Some(first) = self.site_ids.insert(s.id.clone(), si) {
            e(
                format!("{sk}.id"),
                format!("duplicate site id (also sites[{first}])"),
            );
        }
        let tariff = self.site_tariff(&sk, &s.tariff, e);
        for (key, v) in [
            ("max_grid_kw", s.max_grid_kw),
            ("grid_capacity_kw", s.grid_capacity_kw),
            ("capacity_kwh", Some(s.capacity_kwh)),
            ("rated_power_kw", Some(s.rated_power_kw)),
        ] {
            if let Some(g) = v.filter(|g| !(g.is_finite() && *g > 0.0)) {
                e(
                    format!("{sk}.{key}"),
                    format!("{g} must be a positive number"),
                );
            }
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
            if let Some(first) = dev_ids.insert(&d.id, di) {
                e(
                    format!("{dk}.id"),
                    format!("duplicate device id in this site (also devices[{first}])"),
                );
            }
            let Some(spec) = self.device(s, d, &dk, poll_interval, e) else {
                continue;
            };
            for r in spec.profile.points.iter().filter_map(|p| p.role) {
                if !r.is_site_quantity() {
                    continue;
                }
                if let Some(other) = roles.insert(r, &d.id) {
                    e(
                        format!("{dk}.profile"),
                        format!("role {} is also provided by device `{other}`; a site takes each role from one device", r.name()),
                    );
                }
            }
            devices.push(Arc::new(spec));
        }
        let settle = settle(&sk, s, &tariff, e);
        Some(SiteSpec {
            id: s.id.as_str().into(),
            name: s.name.clone().unwrap_or_else(|| s.id.clone()),
            tariff: tariff?,
            max_grid_kw: s.max_grid_kw.unwrap_or(4.0 * s.rated_power_kw),
            grid_capacity_kw: s.grid_capacity_kw,
            max_attribution_gap,
            capacity_kwh: s.capacity_kwh,
            rated_power_kw: s.rated_power_kw,
            poll_interval,
            devices,
            settle,
        })
    }

    fn known_tariff(
        &mut self,
        key: String,
        id: &str,
        e: &mut impl FnMut(String, String),
    ) -> Option<Arc<Tariff>> {
        let t = self.tariff(id);
        if self.tariffs_catalog.find(id).is_none() {
            e(
                key,
                format!(
                    "no tariff `{id}` among the bundled tariffs or in daemon.tariff_dirs {:?}",
                    self.tariff_dirs
                ),
            );
        }
        t
    }

    /// The site's tariff: one file, or files in force one after another.
    fn site_tariff(
        &mut self,
        sk: &str,
        choice: &TariffChoice,
        e: &mut impl FnMut(String, String),
    ) -> Option<Arc<Tariff>> {
        let list = match choice {
            TariffChoice::One(id) => return self.known_tariff(format!("{sk}.tariff"), id, e),
            TariffChoice::Dated(list) => list,
        };
        if list.is_empty() {
            e(
                format!("{sk}.tariff"),
                "an empty list: give at least one { id, from }".into(),
            );
            return None;
        }
        let mut parts = Vec::new();
        let mut ok = true;
        for (i, d) in list.iter().enumerate() {
            let key = format!("{sk}.tariff[{i}]");
            let t = self.known_tariff(format!("{key}.id"), &d.id, e);
            let from = match d.from.parse::<jiff::civil::Date>() {
                Ok(f) => Some(f),
                Err(_) => {
                    e(
                        format!("{key}.from"),
                        format!("`{}` is not a YYYY-MM-DD date", d.from),
                    );
                    None
                }
            };
            if let (Some(prev), Some(f)) = (parts.last().map(|(p, _)| *p), from) {
                if f <= prev {
                    e(
                        format!("{key}.from"),
                        format!("{f} is not after the previous tariff's {prev}: list them in date order"),
                    );
                    ok = false;
                }
            }
            match (t, from) {
                (Some(t), Some(f)) => parts.push((f, t)),
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        match Tariff::sequence(&choice.label(), &parts) {
            Ok(t) => Some(Arc::new(t)),
            Err(m) => {
                e(format!("{sk}.tariff"), m);
                None
            }
        }
    }

    /// Checks one device of site `s`; its spec unless its profile is unusable.
    fn device(
        &mut self,
        s: &Site,
        d: &Device,
        dk: &str,
        poll_interval: Duration,
        e: &mut impl FnMut(String, String),
    ) -> Option<DeviceSpec> {
        if let Some(p) = id_problem(&d.id) {
            e(format!("{dk}.id"), p);
        }
        let timeout = match d.timeout.as_deref().map(parse_duration) {
            None => default_timeout(poll_interval),
            Some(Ok(t)) if t.is_zero() => {
                e(format!("{dk}.timeout"), "must be more than 0".into());
                t
            }
            Some(Ok(t)) => {
                if t >= poll_interval {
                    let given = d.timeout.clone().unwrap_or_default();
                    self.slow_timeouts
                        .entry((given, s.poll_interval.clone()))
                        .or_default()
                        .push(dk.to_string());
                }
                t
            }
            Some(Err(m)) => {
                e(format!("{dk}.timeout"), m);
                Duration::from_secs(1)
            }
        };
        let pause = check_transport(&d.transport, d.unit, dk, e);
        let tkey = d.transport.key();
        let path = format!("{}/{}", s.id, d.id);
        if let Some(other) = self
            .units
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
            match self.serial.get(p) {
                Some((other, t)) if !same_serial(t, &d.transport) => e(
                    format!("{dk}.transport"),
                    format!("serial settings for {p} differ from those of {other}; devices on one bus share them"),
                ),
                Some(_) => {}
                None => {
                    self.serial
                        .insert(p.clone(), (path, d.transport.clone()));
                }
            }
        }
        let profile = self.profile(&d.profile);
        if let Some(p) = profile
            .as_ref()
            .filter(|p| p.verified == Some(crate::acquire::profile::Verified::Unverified))
        {
            self.unverified
                .entry(p.id.clone())
                .or_insert_with(|| (p.document.clone(), Vec::new()))
                .1
                .push(dk.to_string());
        }
        if self.profiles_catalog.find(&d.profile).is_none() {
            e(
                format!("{dk}.profile"),
                format!(
                    "no profile `{}` among the bundled profiles or in daemon.profile_dirs {:?}",
                    d.profile, self.profile_dirs
                ),
            );
        }
        let mut ratio = |key: &str, v: Option<f64>| match v {
            Some(r) if !(r.is_finite() && r > 0.0) => {
                e(
                    format!("{dk}.{key}"),
                    format!("{r} is not a transformer ratio (a number above 0)"),
                );
                1.0
            }
            Some(r) => r,
            None => 1.0,
        };
        let (ct, pt) = (ratio("ct_ratio", d.ct_ratio), ratio("pt_ratio", d.pt_ratio));
        let profile = match profile {
            Some(p) if d.ct_ratio.is_some() || d.pt_ratio.is_some() => {
                match p.with_ratios(ct, pt) {
                    Some(scaled) => Some(Arc::new(scaled)),
                    None => {
                        let key = if d.ct_ratio.is_some() {
                            "ct_ratio"
                        } else {
                            "pt_ratio"
                        };
                        e(
                        format!("{dk}.{key}"),
                        format!("profile `{}` marks no point `transformer`: its values are already primary, so a ratio would multiply them wrongly", p.id),
                    );
                        Some(p)
                    }
                }
            }
            p => p,
        };
        Some(DeviceSpec {
            site: s.id.as_str().into(),
            id: d.id.as_str().into(),
            unit: d.unit,
            profile: profile?,
            transport: d.transport.clone(),
            pause,
            timeout,
            poll_interval,
            slow_every: s.slow_every.max(1),
        })
    }
}

/// Half the poll interval, at most a second: a silent device then costs at
/// most half a poll, and a device slower than a second to answer is broken.
pub fn default_timeout(poll_interval: Duration) -> Duration {
    (poll_interval / 2).min(Duration::from_secs(1))
}

/// A file loaded once per id however many sites name it; None when it is
/// missing or broken (its errors, naming the file, go to `errors` once).
/// The settlement and judgement settings, checked.
fn settle(
    sk: &str,
    s: &Site,
    tariff: &Option<Arc<Tariff>>,
    e: &mut impl FnMut(String, String),
) -> Settle {
    let usable_kwh = s.usable_kwh.unwrap_or(s.capacity_kwh);
    // Unset, it is the capacity, whose own check speaks for it.
    if s.usable_kwh.is_some()
        && !(usable_kwh.is_finite() && usable_kwh > 0.0 && usable_kwh <= s.capacity_kwh.max(0.0))
    {
        e(
            format!("{sk}.usable_kwh"),
            format!(
                "{usable_kwh} must be positive and at most capacity_kwh ({})",
                s.capacity_kwh
            ),
        );
    }
    if let Some(r) = s.round_trip_efficiency.filter(|r| !(*r > 0.0 && *r <= 1.0)) {
        e(
            format!("{sk}.round_trip_efficiency"),
            format!("{r} must be a fraction above 0 and at most 1"),
        );
    }
    if !(s.max_cycles_per_day.is_finite()
        && s.max_cycles_per_day > 0.0
        && s.max_cycles_per_day <= 24.0)
    {
        e(
            format!("{sk}.max_cycles_per_day"),
            format!("{} must be above 0 and at most 24", s.max_cycles_per_day),
        );
    }
    if !(s.reconcile_tolerance.is_finite() && (0.0..1.0).contains(&s.reconcile_tolerance)) {
        e(
            format!("{sk}.reconcile_tolerance"),
            format!("{} must be a fraction (0.01 is 1 %)", s.reconcile_tolerance),
        );
    }
    // Only rates the operator named are checked against the tariff: the
    // default names the usual four, and a tariff without a critical band
    // simply never sees rate 1 move.
    if let Some(rates) = &s.meter_rates {
        if rates.is_empty() || rates.len() > 4 {
            e(
                format!("{sk}.meter_rates"),
                "name 1 to 4 bands, rate 1 first (the meter's rate registers 1-4)".into(),
            );
        }
        for (i, b) in rates.iter().enumerate() {
            if let Some(t) = tariff.as_ref().filter(|t| !t.bands.contains(b)) {
                e(
                    format!("{sk}.meter_rates[{i}]"),
                    format!(
                        "`{b}` is not a band of tariff `{}` ({})",
                        t.id,
                        t.bands.join(", ")
                    ),
                );
            }
        }
    }
    Settle {
        usable_kwh,
        round_trip_efficiency: s.round_trip_efficiency,
        max_cycles_per_day: s.max_cycles_per_day,
        reconcile_tolerance: s.reconcile_tolerance,
        meter_rates: s
            .meter_rates
            .clone()
            .unwrap_or_else(crate::role::default_meter_rates),
        contract: s
            .contract
            .as_ref()
            .map(|c| c.check(&format!("{sk}.contract"), e)),
    }
}

fn loaded<T>(
    cache: &mut HashMap<String, Option<Arc<T>>>,
    errors: &mut Vec<ValidationError>,
    id: &str,
    load: impl FnOnce() -> Option<Result<Arc<T>, Vec<ValidationError>>>,
) -> Option<Arc<T>> {
    cache
        .entry(id.to_string())
        .or_insert_with(|| match load() {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                errors.extend(e);
                None
            }
        })
        .clone()
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
    let serial_unit = |e: &mut dyn FnMut(String, String)| {
        if !(1..=247).contains(&unit) {
            e(
                format!("{dk}.unit"),
                format!("{unit} is not a serial slave address (1..=247)"),
            );
        }
    };
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
            if matches!(t, Transport::RtuOverTcp { .. }) {
                serial_unit(e);
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
            serial_unit(e);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(toml_text: &str) -> Transport {
        #[derive(serde::Deserialize)]
        struct T {
            t: Transport,
        }
        toml::from_str::<T>(&format!("t = {toml_text}")).unwrap().t
    }

    fn transport_errors(t: &Transport, unit: u8) -> (Duration, Vec<String>) {
        let mut errs = Vec::new();
        let pause = check_transport(t, unit, "d", &mut |k, m| errs.push(format!("{k}: {m}")));
        (pause, errs)
    }

    #[test]
    fn transports_are_checked_key_by_key_and_the_pause_parsed() {
        let (pause, errs) = transport_errors(
            &transport("{ type = \"tcp\", host = \"h\", pause = \"20ms\" }"),
            0,
        );
        assert_eq!(pause, Duration::from_millis(20));
        assert!(errs.is_empty(), "unit 0 is fine on plain TCP: {errs:?}");
        let (_, errs) =
            transport_errors(&transport("{ type = \"rtu-over-tcp\", host = \"h\" }"), 0);
        assert_eq!(errs, ["d.unit: 0 is not a serial slave address (1..=247)"]);
        let (pause, errs) = transport_errors(
            &transport(
                "{ type = \"rtu\", path = \"\", baud = 0, stop_bits = 3, data_bits = 9, pause = \"x\" }",
            ),
            248,
        );
        assert_eq!(pause, Duration::ZERO);
        let keys: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "d.transport.path",
                "d.transport.baud",
                "d.transport.stop_bits",
                "d.transport.data_bits",
                "d.unit",
                "d.transport.pause"
            ]
        );
    }

    /// `n` sites with one PCS each, all polled every `poll`.
    fn validated(n: u16, timeout: &str, poll: &str) -> crate::config::Validated {
        let mut toml =
            "[daemon]\nstate_dir = \"/tmp/unused\"\nprofile_dirs = []\ntariff_dirs = []\n"
                .to_string();
        for k in 1..=n {
            toml += &format!(
                "[[sites]]\nid = \"s{k}\"\ntariff = \"cn-chongqing-ci-2025-02\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\npoll_interval = \"{poll}\"\n\
                 [[sites.devices]]\nid = \"pcs\"\nprofile = \"bessmon-sim-pcs\"\nunit = {k}\n{timeout}\n\
                 transport = {{ type = \"tcp\", host = \"127.0.0.1\", port = 502 }}\n"
            );
        }
        crate::config::validate::load_and_validate(&crate::config::ConfigSource::Inline {
            name: "t".into(),
            toml,
        })
        .unwrap()
    }

    #[test]
    fn the_default_timeout_agrees_with_any_poll_interval() {
        for (poll, want) in [("1s", 500), ("300ms", 150), ("10s", 1000)] {
            let v = validated(2, "", poll);
            assert!(v.warnings.is_empty(), "{poll}: {:?}", v.warnings);
            assert!(v
                .devices()
                .all(|d| d.timeout == Duration::from_millis(want)));
        }
    }

    #[test]
    fn one_warning_sums_up_many_devices_with_the_same_slow_timeout() {
        let v = validated(3, "timeout = \"2s\"", "1s");
        assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
        assert!(
            v.warnings[0].contains("3 devices' timeout (first sites[0] (s1).devices[0] (pcs).timeout) 2s is not shorter than the poll interval 1s"),
            "{:?}",
            v.warnings
        );
        let v = validated(1, "timeout = \"1s\"", "1s");
        assert!(v.warnings[0].contains("sites[0] (s1).devices[0] (pcs).timeout 1s is not shorter"));
    }

    #[test]
    fn devices_on_one_serial_port_must_agree_on_its_settings() {
        let a = transport("{ type = \"rtu\", path = \"/dev/ttyS0\", baud = 9600 }");
        let b = transport("{ type = \"rtu\", path = \"/dev/ttyS0\", baud = 19200 }");
        let c = transport("{ type = \"rtu\", path = \"/dev/ttyS0\", parity = \"none\" }");
        assert!(!same_serial(&a, &b));
        assert!(same_serial(&a, &c), "9600 8N1 is the default");
        assert!(!same_serial(
            &a,
            &transport("{ type = \"tcp\", host = \"h\" }")
        ));
    }

    fn one_meter(profile: &str, extra: &str) -> Result<crate::config::Validated, Vec<String>> {
        let toml = format!(
            "[daemon]\nstate_dir = \"/tmp/unused\"\nprofile_dirs = []\ntariff_dirs = []\n\
             [[sites]]\nid = \"s\"\ntariff = \"cn-chongqing-ci-2025-02\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\npoll_interval = \"1s\"\n\
             [[sites.devices]]\nid = \"meter\"\nprofile = \"{profile}\"\nunit = 3\n{extra}\n\
             transport = {{ type = \"tcp\", host = \"127.0.0.1\", port = 502 }}\n"
        );
        crate::config::validate::load_and_validate(&crate::config::ConfigSource::Inline {
            name: "t".into(),
            toml,
        })
        .map_err(|f| f.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn transformer_ratios_scale_the_points_behind_them_and_nothing_else() {
        let v = one_meter("acrel-dtsd1352", "ct_ratio = 300\npt_ratio = 1").unwrap();
        let p = &v.devices().next().unwrap().profile;
        let scale = |n: &str| p.point(n).unwrap().1.scale;
        assert!((scale("forward_active_energy_rate1") - 3.0).abs() < 1e-12);
        assert!((scale("current_a") - 3.0).abs() < 1e-12);
        assert!((scale("voltage_a") - 0.1).abs() < 1e-12, "a PT ratio of 1");
        assert_eq!(scale("frequency"), 0.01);
        let e = one_meter("acrel-dtsd1352", "ct_ratio = 0").unwrap_err();
        assert!(
            e.iter().any(|e| e.contains("devices[0] (meter).ct_ratio")
                && e.contains("0 is not a transformer ratio")),
            "{e:?}"
        );
        let e = one_meter("eastron-sdm630", "ct_ratio = 60").unwrap_err();
        assert!(
            e.iter()
                .any(|e| e.contains("ct_ratio") && e.contains("marks no point `transformer`")),
            "{e:?}"
        );
    }
}
