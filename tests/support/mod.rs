//! Shared helpers for integration tests: real peers started on ephemeral
//! loopback ports, configs in private temp dirs, and sample collection.
#![allow(dead_code)]

pub mod stepped;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bessmon::acquire::{self, Sample};
use bessmon::clock::{SharedClock, SystemClock};
use bessmon::config::validate::{validate, Validated};
use bessmon::config::{load, ConfigSource};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_bessmon")
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Fails loudly when a peer the suite needs is not installed (scripts/test.sh installs them).
pub fn require(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{program} is not installed; run scripts/test.sh, which installs the test peers")
    })
}

/// A child process killed when the test ends, however it ends.
pub struct Proc(pub Child);

impl Proc {
    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        wait_exit(&mut self.0, "a peer")
    }
}

/// Waits for `child` to exit, at most 60 s: one that does not is killed and
/// fails the test, which would otherwise hang.
pub fn wait_exit(child: &mut Child, what: &str) -> Option<i32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.code(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} (pid {}) did not exit within 60 s of SIGTERM",
                    child.id()
                );
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's Python, whose packages (pymodbus, prometheus_client) the tests
/// use; another python3 earlier on PATH would not have them.
pub fn python() -> PathBuf {
    if Path::new("/usr/bin/python3").exists() {
        PathBuf::from("/usr/bin/python3")
    } else {
        require("python3")
    }
}

/// Debian's pymodbus serving a register map written by the test.
pub struct PyModbus {
    pub proc: Proc,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl PyModbus {
    /// Starts the server and waits until it reports that it serves ("port N" or "ready").
    pub fn start(map: serde_json::Value) -> PyModbus {
        let python = python();
        let dir = tempfile::tempdir().unwrap();
        let map_path = dir.path().join("map.json");
        std::fs::write(&map_path, map.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pymodbus_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(&map_path)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .expect("start pymodbus server");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port = match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["port", p] => p.parse().unwrap(),
            ["ready"] => 0,
            _ => panic!(
                "pymodbus server did not start (said {line:?}): {}",
                std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
            ),
        };
        PyModbus {
            proc: Proc(child),
            port,
            _dir: dir,
        }
    }
}

/// A socat pty pair: two linked serial devices in a private directory.
pub struct PtyPair {
    pub proc: Proc,
    pub a: PathBuf,
    pub b: PathBuf,
    _dir: tempfile::TempDir,
}

impl PtyPair {
    pub fn start() -> PtyPair {
        let socat = require("socat");
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut child = Command::new(socat)
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start socat");
        // socat logs "starting data transfer loop" once both ptys exist.
        let stderr = child.stderr.take().unwrap();
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                panic!("socat exited before creating the pty pair");
            }
            if line.contains("starting data transfer loop") {
                break;
            }
        }
        // Keep draining socat's stderr so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        PtyPair {
            proc: Proc(child),
            a,
            b,
            _dir: dir,
        }
    }
}

/// A config in its own temp dir; profile_dirs point at tests/data/profiles.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TestConfig {
    /// `body` is the TOML after the [daemon] table (sites, devices...).
    pub fn new(body: &str) -> TestConfig {
        Self::with_profile_dir(body, &data_dir().join("profiles"))
    }

    pub fn with_profile_dir(body: &str, extra: &Path) -> TestConfig {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[daemon]\ninstance = \"test\"\nstate_dir = {:?}\nhttp_listen = \"127.0.0.1:0\"\nprofile_dirs = [{:?}, {:?}]\ntariff_dirs = []\n\n{body}",
            dir.path().join("state").display().to_string(),
            extra.display().to_string(),
            data_dir().join("profiles").display().to_string(),
        );
        let path = dir.path().join("bessmon.toml");
        std::fs::write(&path, text).unwrap();
        TestConfig { dir, path }
    }

    /// Guards the HTTP API with `token` (in a file beside the config).
    pub fn protect_api(&self, token: &str) {
        let token_file = self.dir.path().join("token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        let text = std::fs::read_to_string(&self.path).unwrap().replace(
            "http_listen = \"127.0.0.1:0\"\n",
            &format!(
                "http_listen = \"127.0.0.1:0\"\nhttp_token_file = {:?}\n",
                token_file.display().to_string()
            ),
        );
        std::fs::write(&self.path, text).unwrap();
    }

    /// Replaces the config file, keeping the state directory (as an operator editing it would).
    pub fn rewrite(&self, body: &str) {
        let fresh = TestConfig::new(body);
        let text = std::fs::read_to_string(&fresh.path).unwrap().replace(
            &fresh.dir.path().join("state").display().to_string(),
            &self.dir.path().join("state").display().to_string(),
        );
        std::fs::write(&self.path, text).unwrap();
    }

    pub fn validated(&self) -> Validated {
        let source = ConfigSource::File(self.path.clone());
        let cfg = load(&source).unwrap_or_else(|e| panic!("{e}"));
        validate(&source.name(), cfg).unwrap_or_else(|e| panic!("{e:?}"))
    }
}

/// Acquisition running in the test's runtime, its samples on `rx`.
pub struct Polling {
    pub rx: mpsc::Receiver<Sample>,
    pub cancel: CancellationToken,
    pub tasks: JoinSet<()>,
    pub validated: Validated,
}

impl Polling {
    pub fn start(cfg: &TestConfig) -> Polling {
        Self::start_with_clock(cfg, Arc::new(SystemClock))
    }

    pub fn start_with_clock(cfg: &TestConfig, clock: SharedClock) -> Polling {
        let validated = cfg.validated();
        let (tx, rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let tasks = acquire::spawn(validated.devices(), clock, tx, cancel.clone());
        Polling {
            rx,
            cancel,
            tasks,
            validated,
        }
    }

    pub async fn next(&mut self) -> Sample {
        tokio::time::timeout(Duration::from_secs(30), self.rx.recv())
            .await
            .expect("a sample within 30 s")
            .expect("pollers running")
    }

    /// The next sample of `device`.
    pub async fn next_of(&mut self, device: &str) -> Sample {
        loop {
            let s = self.next().await;
            if &*s.device.device == device {
                return s;
            }
        }
    }

    /// Collects samples until `device` has produced `n`; returns all, by device.
    pub async fn collect_until(&mut self, device: &str, n: usize) -> HashMap<String, Vec<Sample>> {
        let mut by: HashMap<String, Vec<Sample>> = HashMap::new();
        while by.get(device).map_or(0, Vec::len) < n {
            let s = self.next().await;
            by.entry(s.device.device.to_string()).or_default().push(s);
        }
        by
    }

    /// Collects samples until every one of `devices` has produced at least `n`.
    pub async fn collect_each(
        &mut self,
        devices: &[&str],
        n: usize,
    ) -> HashMap<String, Vec<Sample>> {
        let mut by: HashMap<String, Vec<Sample>> = HashMap::new();
        while devices.iter().any(|d| by.get(*d).map_or(0, Vec::len) < n) {
            let s = self.next().await;
            by.entry(s.device.device.to_string()).or_default().push(s);
        }
        by
    }

    pub async fn stop(mut self) {
        self.cancel.cancel();
        // Drain so pollers blocked on a full channel see the cancellation.
        while self.rx.try_recv().is_ok() {}
        drop(self.rx);
        while self.tasks.join_next().await.is_some() {}
    }
}

pub fn num(s: &Sample, name: &str) -> f64 {
    match s.value(name) {
        Some(bessmon::acquire::decode::Value::Num(v)) => *v,
        other => panic!(
            "{name}: expected a number, got {other:?} in {:?}",
            s.readings
        ),
    }
}

pub fn boolean(s: &Sample, name: &str) -> bool {
    match s.value(name) {
        Some(bessmon::acquire::decode::Value::Bool(v)) => *v,
        other => panic!("{name}: expected a bool, got {other:?}"),
    }
}

/// Registers for `test-all-types`, computed by hand (see each comment).
pub fn all_types_map() -> serde_json::Value {
    serde_json::json!({
        "holding": {
            "0x00": [0xFFD5],                       // u16 65493
            "0x01": [0xFFD5],                       // i16 -43 (SunGather #17)
            "0x02": [0xD5FF],                       // i16 BADC -43
            "0x03": [0x1234, 0x5678],               // u32 0x12345678
            "0x05": [0x5678, 0x1234],               // u32 CDAB
            "0x07": [0x3412, 0x7856],               // i32 BADC
            "0x09": [0xFEFF, 0xFFFF],               // i32 DCBA -2
            "0x0B": [0x42F6, 0xE979],               // f32 123.456
            "0x0D": [0xE979, 0x42F6],               // f32 CDAB
            "0x0F": [0xBFF8, 0, 0, 0],              // f64 -1.5
            "0x13": [0x0400, 0x0300, 0x0200, 0x0100], // u64 DCBA 0x0001000200030004
            "0x17": [0xFFFD, 0xFFFF, 0xFFFF, 0xFFFF], // i64 CDAB -3
            "0x1B": [0, 500],                       // 500 x 0.1 - 1 = 49
            "0x1D": [0x8000, 0],                    // missing sentinel
            "0x1F": [12345, 0xFFFE],                // 12345 x 10^-2
            "0x21": [0b1000],                       // bit 3 set, bit 0 clear
            "0x22": [0x4245, 0x5353, 0x2D30, 0x3100], // "BESS-01"
            "0x30": [500]                           // outside valid [0, 100]
        },
        "input": { "0x00": [7] },
        "coils": { "0x00": [0, 0, 0, 0, 0, 1] },
        "discrete": { "0x00": [0, 0, 1] }
    })
}

pub fn assert_all_types(s: &Sample) {
    assert!(s.online && s.errors.is_empty(), "errors: {:?}", s.errors);
    assert_eq!(num(s, "u16_abcd"), 65493.0);
    assert_eq!(num(s, "i16_abcd"), -43.0);
    assert_eq!(num(s, "i16_badc"), -43.0);
    assert_eq!(num(s, "u32_abcd"), 305_419_896.0);
    assert_eq!(num(s, "u32_cdab"), 305_419_896.0);
    assert_eq!(num(s, "i32_badc"), 305_419_896.0);
    assert_eq!(num(s, "i32_dcba"), -2.0);
    assert_eq!(num(s, "f32_abcd"), 123.456);
    assert_eq!(num(s, "f32_cdab"), 123.456);
    assert_eq!(num(s, "f64_abcd"), -1.5);
    assert_eq!(num(s, "u64_dcba"), 0x0001_0002_0003_0004u64 as f64);
    assert_eq!(num(s, "i64_cdab"), -3.0);
    assert!((num(s, "scaled") - 49.0).abs() < 1e-9);
    assert!(s.value("not_available").is_none());
    let (na, _) = s.device.profile.point("not_available").unwrap();
    assert!(s.missing.contains(&na), "a sentinel is reported missing");
    assert!((num(s, "w") - 123.45).abs() < 1e-9);
    assert!(boolean(s, "flag_bit3"));
    assert!(!boolean(s, "flag_bit0"));
    match s.value("model") {
        Some(bessmon::acquire::decode::Value::Text(t)) => assert_eq!(&**t, "BESS-01"),
        other => panic!("model: {other:?}"),
    }
    assert_eq!(num(s, "input_u16"), 7.0);
    assert!(boolean(s, "coil_5"));
    assert!(boolean(s, "discrete_2"));
}

pub fn site_toml(poll: &str, devices: &str) -> String {
    sized_site_toml(poll, 100.0, 50.0, devices)
}

/// A Chongqing site of the given size (plausibility limits follow rated power).
pub fn sized_site_toml(poll: &str, capacity_kwh: f64, rated_kw: f64, devices: &str) -> String {
    format!(
        "[[sites]]\nid = \"lab\"\ntariff = \"cn-chongqing-ci-2025-02\"\ncapacity_kwh = {capacity_kwh}\nrated_power_kw = {rated_kw}\npoll_interval = \"{poll}\"\nslow_every = 1\n{devices}"
    )
}

pub fn device_toml(id: &str, profile: &str, unit: u8, timeout: &str, transport: &str) -> String {
    format!(
        "\n[[sites.devices]]\nid = \"{id}\"\nprofile = \"{profile}\"\nunit = {unit}\ntimeout = \"{timeout}\"\ntransport = {transport}\n"
    )
}

/// The simulator's PCS, BMS and meter (units 1, 2, 3) on one TCP port.
pub fn sim_devices(port: u16, timeout: &str) -> String {
    let t = format!("{{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}");
    [("pcs", 1), ("bms", 2), ("meter", 3)]
        .iter()
        .map(|(id, u)| device_toml(id, &format!("bessmon-sim-{id}"), *u, timeout, &t))
        .collect()
}

/// `bessmon COMMAND -c CONFIG ARGS...`, waited for.
pub fn cli_c(command: &str, config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg(command)
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("run bessmon")
}

/// `bessmon ARGS...`, waited for.
pub fn cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run bessmon")
}

/// A free loopback port (bound and released; servers that cannot take port 0 get it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Blocks until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16) {
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on port {port} after 10 s");
}

/// A Mosquitto broker of the test's own, with persistence in a private dir.
pub struct Mosquitto {
    pub proc: Option<Proc>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Mosquitto {
    /// An anonymous plain listener on a loopback port.
    pub fn start() -> Mosquitto {
        Self::with_port(|port, _| format!("listener {port} 127.0.0.1\nallow_anonymous true"))
    }

    /// `conf(port, dir)` gives the listeners, TLS and auth part of the config.
    pub fn with_port(extra_fn: impl Fn(u16, &Path) -> String) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let extra = extra_fn(port, dir.path());
        std::fs::write(
            &conf,
            // As root, mosquitto would drop to its own user and then could not read the
            // test's private dir (persistence, keys); `user` is ignored when not root.
            format!(
                "user root\npersistence true\npersistence_location {}/\nlog_dest stderr\n{extra}\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut m = Mosquitto {
            proc: None,
            port,
            dir,
            conf,
        };
        m.resume();
        m
    }

    /// Stops the broker cleanly (it saves its sessions).
    pub fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.terminate();
        }
    }

    /// Restarts the broker with nothing retained and no sessions, as one
    /// without persistence comes back.
    pub fn restart_forgetting(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(self.dir.path().join("mosquitto.db"));
        self.resume();
    }

    pub fn resume(&mut self) {
        let child = Command::new(require("mosquitto"))
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.proc = Some(Proc(child));
        wait_for_port(self.port);
    }
}

/// What a test subscriber received: (topic, payload, retained).
pub type Received = Arc<std::sync::Mutex<Vec<(String, String, bool)>>>;

/// A QoS 1 subscriber to `filter` with a persistent session; it reconnects after
/// broker restarts. Messages collect in the returned list.
pub fn subscribe(
    port: u16,
    client_id: &str,
    filter: &str,
    credentials: Option<(&str, &str)>,
) -> (Received, tokio::runtime::Runtime) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let got: Received = Arc::default();
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((u, p)) = credentials {
        o.set_credentials(u, p);
    }
    let (client, mut el) = AsyncClient::new(o, 100);
    let filter = filter.to_string();
    let sink = got.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let mut subscribed = false;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    // A persistent session keeps the subscription; without one, subscribe again.
                    if !subscribed || !ack.session_present {
                        client
                            .subscribe(filter.clone(), QoS::AtLeastOnce)
                            .await
                            .unwrap();
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subscribed = true;
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload = String::from_utf8_lossy(&p.payload).into_owned();
                    sink.lock()
                        .unwrap()
                        .push((p.topic.clone(), payload, p.retain));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    (got, rt)
}

/// Publishes one message (QoS 1, not retained) and waits for its PUBACK.
pub fn publish_once(port: u16, topic: &str, payload: &str) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let (client, mut conn) = Client::new(MqttOptions::new("t-publish-once", "127.0.0.1", port), 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
        .unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match conn.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => return,
            Err(_) => panic!("no PUBACK within 10 s for {topic}"),
            Ok(_) => {}
        }
    }
}

/// Polls `done` every 100 ms until it holds; fails after `secs` seconds,
/// saying what it waited for.
pub fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited {secs} s for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `pred` holds for what was received (at most 60 s).
pub fn wait_until(got: &Received, what: &str, pred: impl Fn(&[(String, String, bool)]) -> bool) {
    for _ in 0..1200 {
        if pred(&got.lock().unwrap()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let n = got.lock().unwrap().len();
    panic!("timed out waiting for {what} ({n} messages received)");
}

/// A `bessmon run` child whose log lines are readable as they come.
pub struct Daemon {
    pub proc: Proc,
    pub log: std::sync::mpsc::Receiver<String>,
    /// Every line read so far: the daemon's tasks log concurrently, so a line
    /// one wait skipped may be the one the next wait is looking for.
    seen: std::cell::RefCell<Vec<String>>,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with(config, &[])
    }

    /// `bessmon run -c CONFIG` followed by `args`.
    pub fn start_with(config: &Path, args: &[&str]) -> Daemon {
        Daemon::start_env(config, args, &[])
    }

    /// As `start_with`, with these environment variables set.
    pub fn start_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(bin())
            .args(["run", "-c"])
            .arg(config)
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Daemon {
            proc: Proc(child),
            log: rx,
            seen: Default::default(),
        }
    }

    /// The port of the daemon's HTTP server (configs here listen on port 0).
    pub fn http_port(&self) -> u16 {
        let line = self.wait_logs(&["HTTP on http://"]).remove(0);
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line}"));
        addr.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    /// A metric's value from /metrics (the sample line starting with `series`).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (code, text) = http("GET", self.http_port(), "/metrics", "", None);
        assert_eq!(code, 200, "{text}");
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// Reads log lines until one contains `needle`; returns it. Only lines
    /// not read yet count, so this waits for something that happens next.
    pub fn wait_log(&self, needle: &str) -> String {
        loop {
            let line = self.next_line(|| format!("no log line with `{needle}`"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn next_line(&self, what: impl Fn() -> String) -> String {
        let line = self
            .log
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{}", what()));
        self.seen.borrow_mut().push(line.clone());
        line
    }

    /// Waits until each of `needles` has appeared since the daemon started,
    /// in any order, counting lines earlier waits already read; returns the
    /// first line matching each needle, in the order of `needles`.
    pub fn wait_logs(&self, needles: &[&str]) -> Vec<String> {
        let mut found: Vec<Option<String>> = needles
            .iter()
            .map(|n| self.seen.borrow().iter().find(|l| l.contains(n)).cloned())
            .collect();
        while found.iter().any(Option::is_none) {
            let line = self.next_line(|| {
                let left: Vec<&str> = needles
                    .iter()
                    .zip(&found)
                    .filter(|(_, f)| f.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                format!("no log lines with {left:?}")
            });
            for (n, f) in needles.iter().zip(found.iter_mut()) {
                if f.is_none() && line.contains(n) {
                    *f = Some(line.clone());
                }
            }
        }
        found.into_iter().flatten().collect()
    }

    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.proc.0.id().to_string()])
            .status();
        wait_exit(&mut self.proc.0, "the daemon")
    }

    /// Stops the daemon (SIGTERM) and returns every line it logged, with its exit code.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let code = self.terminate();
        // The reader thread ends at EOF, closing the channel.
        let mut lines = self.seen.take();
        lines.extend(self.log.iter());
        (code, lines)
    }

    /// SIGKILL, then every line logged so far (the ones read and the rest).
    pub fn kill_and_collect(&mut self) -> Vec<String> {
        self.kill();
        let mut lines = self.seen.take();
        lines.extend(self.log.iter());
        lines
    }

    pub fn kill(&mut self) {
        self.proc.0.kill().unwrap();
        self.proc.0.wait().unwrap();
    }
}

/// A plain HTTP/1.1 request to a loopback server; returns (status, body).
pub fn http(
    method: &str,
    port: u16,
    path_and_query: &str,
    body: &str,
    auth: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // A server that never answers fails the test instead of hanging it.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap_or_else(|e| {
        panic!("{method} {path_and_query} on port {port}: no whole answer within 30 s ({e})")
    });
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    // Chunked bodies: keep it simple, drop the chunk-size lines.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n")
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, l)| l)
            .collect::<Vec<_>>()
            .join("")
    } else {
        body
    };
    (status, body)
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Debian's VictoriaMetrics on a loopback port, data in a private dir.
pub struct VictoriaMetrics {
    pub proc: Option<Proc>,
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl VictoriaMetrics {
    pub fn start() -> VictoriaMetrics {
        Self::start_with(&[])
    }

    /// With HTTP basic authentication on every endpoint (`-httpAuth.*`).
    pub fn start_with_auth(user: &str, password: &str) -> VictoriaMetrics {
        Self::start_with(&[
            format!("-httpAuth.username={user}"),
            format!("-httpAuth.password={password}"),
        ])
    }

    fn start_with(extra: &[String]) -> VictoriaMetrics {
        let mut vm = VictoriaMetrics {
            proc: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.to_vec(),
        };
        vm.resume();
        vm
    }

    pub fn resume(&mut self) {
        let child = Command::new(require("victoria-metrics"))
            .args(&self.extra)
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!("-storageDataPath={}", self.dir.path().display()))
            .arg("-loggerLevel=ERROR")
            // Fresh points must be readable at once, not 30 s later.
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics");
        self.proc = Some(Proc(child));
        wait_for_port(self.port);
    }

    pub fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.terminate();
        }
    }

    /// Every series whose name matches `regex`: (labels, [(timestamp ms, value)]).
    pub fn export(&self, regex: &str) -> Vec<(serde_json::Value, Vec<(i64, f64)>)> {
        http("GET", self.port, "/internal/force_flush", "", None);
        let q = url_encode(&format!("{{__name__=~\"{regex}\"}}"));
        let (status, body) = http(
            "GET",
            self.port,
            &format!("/api/v1/export?match[]={q}"),
            "",
            None,
        );
        assert_eq!(status, 200, "{body}");
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                let ts = v["timestamps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_i64().unwrap());
                let vals = v["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap_or(f64::NAN));
                (v["metric"].clone(), ts.zip(vals).collect())
            })
            .collect()
    }
}

/// Debian's InfluxDB 1.x on loopback ports, data in a private dir.
pub struct InfluxV1 {
    pub proc: Proc,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl InfluxV1 {
    pub fn start(auth: bool) -> InfluxV1 {
        let dir = tempfile::tempdir().unwrap();
        let (port, rpc) = (free_port(), free_port());
        let d = dir.path().display();
        let conf = dir.path().join("influxdb.conf");
        std::fs::write(
            &conf,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{port}\"\n  auth-enabled = {auth}\n  log-enabled = false\n[monitor]\n  store-enabled = false\n"
            ),
        )
        .unwrap();
        let child = Command::new(require("influxd"))
            .arg("-config")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start influxd");
        wait_for_port(port);
        InfluxV1 {
            proc: Proc(child),
            port,
            _dir: dir,
        }
    }

    /// Runs InfluxQL (`q`) and returns the JSON answer.
    pub fn query(&self, q: &str, db: &str, auth: Option<(&str, &str)>) -> serde_json::Value {
        let mut path = format!("/query?db={db}&epoch=ms&q={}", url_encode(q));
        if let Some((u, p)) = auth {
            path += &format!("&u={u}&p={p}");
        }
        let (status, body) = http("POST", self.port, &path, "", None);
        assert!(status == 200, "{q}: HTTP {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }
}

/// The simulator in the test's process on ephemeral ports, real time; stopped when dropped.
pub struct SimHandle {
    _rt: tokio::runtime::Runtime,
    pub sim: bessmon::sim::Simulator,
    cancel: CancellationToken,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub fn simulator(sites: usize) -> SimHandle {
    simulator_with((0..sites).map(bessmon::sim::SiteParams::standard).collect())
}

/// One simulated site that charges for the next half hour of local time,
/// so a ledger has energy to book whatever the hour.
pub fn charging_site() -> SimHandle {
    use bessmon::sim::physics::Schedule;
    use bessmon::sim::SiteParams;
    let local = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap());
    let minute = local.hour() as u32 * 60 + local.minute() as u32;
    let params = SiteParams {
        schedule: Schedule {
            charge: vec![(0, (minute + 30).min(1440))],
            discharge: vec![],
        },
        ..SiteParams::standard(0)
    };
    simulator_with(vec![params])
}

/// Simulated sites of the given parameters, on the wall clock.
pub fn simulator_with(params: Vec<bessmon::sim::SiteParams>) -> SimHandle {
    use std::net::{IpAddr, Ipv4Addr};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cancel = CancellationToken::new();
    let sim = rt
        .block_on(bessmon::sim::start(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
            params,
            Arc::new(SystemClock),
            cancel.clone(),
        ))
        .unwrap();
    SimHandle {
        _rt: rt,
        sim,
        cancel,
    }
}

/// One 2 MWh / 1 MW site of the simulator's three devices, polled every 200 ms.
pub fn sim_site_config(sim: &SimHandle) -> TestConfig {
    TestConfig::new(&sized_site_toml(
        "200ms",
        2000.0,
        1000.0,
        &sim_devices(sim.sim.addrs[0].port(), "1s"),
    ))
}

/// Simulated time that stands still or runs at real speed, never jumping: a jump
/// would look (correctly) like an implausible counter spike to the daemons.
#[derive(Debug)]
pub struct Freezable(std::sync::Mutex<(jiff::Timestamp, Option<std::time::Instant>)>);

impl bessmon::clock::Clock for Freezable {
    fn now(&self) -> jiff::Timestamp {
        let (base, running) = *self.0.lock().unwrap();
        match running {
            Some(since) => base + jiff::SignedDuration::try_from(since.elapsed()).unwrap(),
            None => base,
        }
    }
}

impl Freezable {
    /// Frozen at `at` until `run`.
    pub fn at(at: jiff::Timestamp) -> Freezable {
        Freezable(std::sync::Mutex::new((at, None)))
    }
    pub fn run(&self) {
        use bessmon::clock::Clock;
        let now = self.now();
        *self.0.lock().unwrap() = (now, Some(std::time::Instant::now()));
    }
    pub fn freeze(&self) {
        use bessmon::clock::Clock;
        let now = self.now();
        *self.0.lock().unwrap() = (now, None);
    }
}

/// `bessmon report` for the lab site's lifetime, as JSON.
pub fn lifetime_report(cfg: &TestConfig) -> serde_json::Value {
    let out = cli_c(
        "report",
        &cfg.path,
        &["--site", "lab", "--period", "lifetime", "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until a simulated site has answered `more` requests beyond now.
pub fn wait_for_requests(site: &bessmon::sim::SimSite, more: u64, what: &str) {
    use std::sync::atomic::Ordering::Relaxed;
    let target = site.requests.load(Relaxed) + more;
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while site.requests.load(Relaxed) < target {
        assert!(
            std::time::Instant::now() < end,
            "timed out after 30 s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tmpfs of `size` mounted on `dir` by the test, unmounted when dropped.
/// Fails the test where the machine does not allow it (the test command runs
/// as root, in CI too).
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        let out = Command::new(require("mount"))
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs on {} (the test needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `bessmon read` of `unit` at the simulator (or any device) on `port`, with
/// profiles from `dir` besides the bundled ones; its standard output.
pub fn read_device(
    port: u16,
    unit: u8,
    profile: &str,
    dir: Option<&Path>,
    extra: &[&str],
) -> String {
    let (port, unit) = (port.to_string(), unit.to_string());
    let mut args = vec![
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--unit",
        &unit,
        "--profile",
        profile,
    ];
    let dir = dir.map(|d| d.to_str().unwrap().to_string());
    if let Some(d) = &dir {
        args.extend(["--profile-dir", d.as_str()]);
    }
    args.extend_from_slice(extra);
    let out = cli(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "read {profile} unit {unit}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A simulator presenting `profiles` for one site, its clock frozen at 07:00
/// in Shanghai on 2025-03-10 (charging in the valley). Cancel the token to stop it.
pub fn frozen_simulator(
    rt: &tokio::runtime::Runtime,
    params: bessmon::sim::SiteParams,
    profiles: bessmon::sim::SimProfiles,
) -> (bessmon::sim::Simulator, CancellationToken) {
    let clock = Arc::new(Freezable::at("2025-03-09T23:00:00Z".parse().unwrap()));
    let cancel = CancellationToken::new();
    let s = rt
        .block_on(bessmon::sim::start_with(
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            0,
            vec![params],
            clock,
            cancel.clone(),
            profiles,
        ))
        .unwrap();
    (s, cancel)
}
