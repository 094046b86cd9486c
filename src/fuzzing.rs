//! Entry points for the fuzz targets in `fuzz/`: every decoder of input from
//! outside (a device, a file, a client) fed arbitrary bytes. Each returns
//! normally or panics; a panic is a bug, either in bessmon or in an invariant
//! checked here. The same functions run on the stable toolchain inside the
//! test suite (`tests/fuzz_stable.rs`), over the seed corpora in
//! `fuzz/corpus/` and random inputs, so a regression fails CI without libFuzzer.
#![doc(hidden)]

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use crate::account::report::Period;
use crate::account::tariff::Tariff;
use crate::acquire::decode::{decode_reply, Decoded, Reply, Value};
use crate::acquire::planner::{plan, Plan};
use crate::acquire::profile::{Profile, Table};
use crate::spool::Record;

/// Modbus replies decoded against a set of profiles: the first byte picks
/// the profile, the second the planned request, the third whether the reply
/// is registers or bits; the rest is the reply, however long (a device may
/// answer short or long).
pub struct ModbusReplies {
    profiles: Vec<(Profile, Plan)>,
}

impl ModbusReplies {
    /// Panics on a profile that does not parse or plan: a target that
    /// silently had no profile would fuzz nothing.
    pub fn new(texts: &[&str]) -> ModbusReplies {
        let profiles = texts
            .iter()
            .map(|t| {
                let p = Profile::parse(Path::new(""), t)
                    .unwrap_or_else(|e| panic!("a fuzz profile does not parse: {e:?}"));
                let plan = plan(&p).unwrap_or_else(|e| panic!("{}: {e}", p.id));
                (p, plan)
            })
            .collect();
        ModbusReplies { profiles }
    }

    /// How many profiles replies are decoded against.
    pub fn profiles(&self) -> usize {
        self.profiles.len()
    }

    /// Every bundled profile and the given extra ones.
    pub fn bundled_and(extra: &[&str]) -> ModbusReplies {
        let mut texts: Vec<&str> = crate::bundled::PROFILES.iter().map(|(_, t)| *t).collect();
        texts.extend_from_slice(extra);
        ModbusReplies::new(&texts)
    }

    pub fn run(&self, data: &[u8]) {
        let [p, r, kind, rest @ ..] = data else {
            return;
        };
        if self.profiles.is_empty() {
            return;
        }
        let (profile, plan) = &self.profiles[*p as usize % self.profiles.len()];
        let requests: Vec<_> = plan.requests(true).collect();
        if requests.is_empty() {
            return;
        }
        let req = requests[*r as usize % requests.len()];
        let reply = if kind & 1 == 1 || matches!(req.table, Table::Coil | Table::Discrete) {
            Reply::Bits(
                rest.iter()
                    .flat_map(|b| (0..8).map(move |i| b >> i & 1 == 1))
                    .collect(),
            )
        } else {
            Reply::Words(
                rest.chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                    .collect(),
            )
        };
        decode_reply(profile, req, &reply, |i, d| {
            assert!(
                req.points.contains(&i),
                "decoded a point the request does not cover"
            );
            if let Decoded::Value {
                value: Value::Num(v),
                ..
            } = d
            {
                // A NaN or infinity must never reach the books.
                assert!(
                    v.is_finite(),
                    "point {} decoded to {v}",
                    profile.points[i].name
                );
            }
        });
    }
}

// The file-reading targets below return whether the input was accepted as
// valid, so the stable suite can check that its seeds reach past validation.
// They parse under an empty path: a named one would refuse every input whose
// id is not that name, and the fuzzer would never get past the id.

/// A profile file: parsed, and when valid, planned and decoded from a
/// reply of the full length every request asks for.
pub fn profile_file(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(profile) = Profile::parse(Path::new(""), text) else {
        return false;
    };
    let Ok(plan) = plan(&profile) else {
        return false;
    };
    for req in plan.requests(true) {
        assert!(req.count > 0, "an empty request");
        let reply = match req.table {
            Table::Coil | Table::Discrete => Reply::Bits(vec![false; req.count as usize]),
            _ => Reply::Words(vec![0; req.count as usize]),
        };
        decode_reply(&profile, req, &reply, |i, d| {
            let p = &profile.points[i];
            // A full reply holds every point the request was planned for.
            assert!(
                p.scale_factor.is_some() || d != Decoded::Missing || !p.missing.is_empty(),
                "point {} is missing from a full reply",
                p.name
            );
        });
    }
    true
}

/// A tariff file: parsed, and when valid, its segments walked over a year,
/// each of which must hold the instant it was asked for and move forward.
pub fn tariff_file(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(tariff) = Tariff::parse(Path::new(""), text) else {
        return false;
    };
    walk_tariff(&tariff);
    true
}

fn walk_tariff(tariff: &Tariff) {
    use jiff::{SignedDuration, Timestamp};
    let start: Timestamp = "2025-01-01T00:00:00Z".parse().expect("a timestamp");
    // 53 weeks in steps that visit every hour of the day and day of the week.
    for k in 0..53i64 * 7 {
        let t = start + SignedDuration::from_secs(k * (86_400 + 3_600 + 60));
        let seg = tariff.segment_at(t);
        assert!(
            seg.contains(t),
            "segment {:?}..{:?} does not hold {t}",
            seg.start,
            seg.end
        );
        assert!(
            (seg.band as usize) < tariff.bands.len(),
            "band index out of range"
        );
    }
    // A day and a half walked segment by segment, across midnight.
    let mut at = start;
    let end = start + SignedDuration::from_hours(36);
    let mut steps = 0;
    while at < end {
        let seg = tariff.segment_at(at);
        assert!(seg.end > at, "segment at {at} does not move forward");
        at = seg.end;
        steps += 1;
        assert!(steps <= 36 * 60, "more segments than minutes");
    }
}

/// The configuration, loaded and validated as `check` does.
pub fn config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    // A secret file may name a device or a FIFO, whose reads block: that is
    // the operator's path, not a parser bug, and would stall the fuzzer.
    if ["/dev", "/proc", "/sys", "/run"]
        .iter()
        .any(|p| text.contains(p))
    {
        return false;
    }
    let source = crate::config::ConfigSource::Inline {
        name: "fuzz.toml".into(),
        toml: text.to_string(),
    };
    match crate::config::validate::load_and_validate(&source) {
        Ok(_) => true,
        Err(errors) => {
            assert!(!errors.is_empty(), "a failure with no error");
            false
        }
    }
}

/// A replay CSV history, run through a fresh account and reported.
pub fn replay_csv(data: &[u8]) -> bool {
    let tariff = chongqing();
    let setup = crate::account::energy::SiteSetup::new("fuzz", tariff, 2000.0, 1000.0);
    match crate::account::replay::replay(setup, "fuzz.csv", data, Period::Lifetime, |_| {}) {
        Ok(report) => {
            let total = report.total.savings;
            assert!(total.is_finite(), "savings of {total}");
            true
        }
        Err(_) => false,
    }
}

fn chongqing() -> Arc<Tariff> {
    static TARIFF: std::sync::OnceLock<Arc<Tariff>> = std::sync::OnceLock::new();
    TARIFF
        .get_or_init(|| {
            let text = crate::bundled::tariff("cn-chongqing-ci-2025-02").expect("bundled");
            Arc::new(Tariff::parse(Path::new("cn-chongqing-ci-2025-02.toml"), text).expect("valid"))
        })
        .clone()
}

/// A spool entry as stored: decoding it and encoding it again gives the same bytes.
pub fn spool_record(data: &[u8]) -> bool {
    let Some(r) = Record::decode(data) else {
        return false;
    };
    assert_eq!(r.encode(), data, "a record does not survive a round trip");
    true
}

/// The HTTP API of a daemon with one site ("lab") and a ledger, served on a
/// loopback port; inputs are request targets (path and query).
pub struct Api {
    port: u16,
    token: String,
    _dir: TempDir,
    _runtime: std::thread::JoinHandle<()>,
}

/// A directory removed when dropped (the library has no tempfile crate).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Api {
    pub fn start() -> Api {
        use crate::config::ConfigSource;
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bessmon-fuzz-api-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let token = "fuzz-token".to_string();
        std::fs::write(dir.join("token"), &token).expect("the token file");
        let toml = format!(
            "[daemon]\nstate_dir = {:?}\nhttp_listen = \"127.0.0.1:0\"\nhttp_token_file = {:?}\n\
             [[sites]]\nid = \"lab\"\ntariff = \"cn-chongqing-ci-2025-02\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\n\
             [[sites.devices]]\nid = \"pcs\"\nprofile = \"bessmon-sim-pcs\"\nunit = 1\n\
             transport = {{ type = \"tcp\", host = \"127.0.0.1\", port = 9 }}\n",
            dir.join("state").display().to_string(),
            dir.join("token").display().to_string()
        );
        let v = crate::config::validate::load_and_validate(&ConfigSource::Inline {
            name: "fuzz.toml".into(),
            toml,
        })
        .expect("the fuzz API's config is valid");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let runtime = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(serve_api(v, port_tx));
        });
        let port = port_rx.recv().expect("the fuzz API started");
        Api {
            port,
            token,
            _dir: TempDir(dir),
            _runtime: runtime,
        }
    }

    /// One GET of `data` as the request target, with the token when the
    /// first byte is even. The answer must not be a server error.
    pub fn request(&self, data: &[u8]) {
        let [auth, target @ ..] = data else {
            return;
        };
        // Bytes a request line cannot hold would only test the HTTP parser's
        // refusal, not the API.
        if target.is_empty()
            || target
                .iter()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || *b >= 0x7f)
        {
            return;
        }
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if auth % 2 == 0 {
            req.extend_from_slice(format!("Authorization: Bearer {}\r\n", self.token).as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        s.write_all(&req).expect("send");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let status: u16 = std::str::from_utf8(out.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        // The probes answer 503 by design: nothing has been polled here.
        let path = target.split(|b| *b == b'?').next().unwrap_or_default();
        let probe = matches!(path, b"/readyz" | b"/healthz") && status == 503;
        assert!(
            (200..500).contains(&status) || probe,
            "GET {} answered {status}: {}",
            String::from_utf8_lossy(target),
            String::from_utf8_lossy(&out)
        );
    }
}

async fn serve_api(v: crate::config::Validated, port: std::sync::mpsc::Sender<u16>) {
    use crate::publish::http;
    let mut books = crate::account::accountant::Accountant::open(&v.sites, &v.daemon.state_dir)
        .expect("the fuzz API's ledger");
    let now: jiff::Timestamp = "2026-03-15T04:00:00Z".parse().expect("a timestamp");
    let (asks, mut asked) = tokio::sync::mpsc::channel(16);
    let shared = http::Shared {
        live: Arc::new(std::sync::RwLock::new(http::Live::new(&v))),
        token: v.daemon.http_token.as_deref().map(Into::into),
        asks,
        spool: None,
        sinks: Vec::new(),
        influx: None,
        mqtt: None,
        clock: Arc::new(crate::clock::ManualClock::new(now)),
        health: Arc::default(),
        metrics_public: false,
    };
    let listener = http::bind(v.daemon.http_listen).await.expect("bind");
    let _ = port.send(listener.local_addr().expect("an address").port());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(http::serve(listener, shared, stop));
    while let Some(ask) = asked.recv().await {
        crate::daemon::answer(ask, &mut books);
    }
}

/// A period as the API and `report` take it: what parses prints back the same.
pub fn period(data: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(p) = s.parse::<Period>() else {
        return false;
    };
    let printed = p.to_string();
    assert_eq!(
        printed.parse::<Period>().ok(),
        Some(p),
        "`{s}` printed as `{printed}`"
    );
    true
}
