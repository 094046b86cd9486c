//! `bessmon bench mqtt` and `bessmon bench influx`: how fast a sink catches up
//! after an outage. The outage's messages are spooled in the daemon's 200 ms
//! batches, then the sink drains the spool to a local server started here.
use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::bench::Guard;
use super::{Failure, Outcome};
use crate::outbox::Event;
use crate::spool::{Limits, Record, Spool};

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::runtime(e.to_string())
}

/// A spooled outage, ready to drain.
struct Outage {
    dir: PathBuf,
    spool: Arc<Spool>,
    sink: &'static str,
    records: u64,
    lines: u64,
    fill_secs: f64,
    bytes: u64,
}

impl Drop for Outage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16, Failure> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(fail)?
        .port())
}

fn spawn(program: &str, args: &[String], port: u16) -> Result<Guard, Failure> {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot start {program} (install its Debian package): {e}"
            ))
        })?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Guard(child))
}

/// Spools `seconds` of what `per_second` produces for `sink`.
fn spool_outage(
    name: &str,
    sink: &'static str,
    per_second: impl Iterator<Item = Vec<Record>>,
) -> Result<Outage, Failure> {
    let dir = std::env::temp_dir().join(format!("bessmon-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let limits = Limits {
        max_bytes: 16 << 30,
        max_age: Duration::from_secs(30 * 86400),
    };
    let spool = Arc::new(Spool::open(&dir, limits).map_err(fail)?);
    let t0 = Instant::now();
    let (mut records, mut lines) = (0u64, 0u64);
    for second in per_second {
        for chunk in second.chunks((second.len() / 5).max(1)) {
            let batch: Vec<(&str, Record)> = chunk.iter().map(|r| (sink, r.clone())).collect();
            lines += chunk
                .iter()
                .map(|r| r.payload.iter().filter(|&&b| b == b'\n').count().max(1) as u64)
                .sum::<u64>();
            spool.append(&batch).map_err(fail)?;
            records += batch.len() as u64;
        }
    }
    let bytes = spool.stats(sink).bytes;
    Ok(Outage {
        dir,
        spool,
        sink,
        records,
        lines,
        fill_secs: t0.elapsed().as_secs_f64(),
        bytes,
    })
}

impl Outage {
    /// Runs the sink until the spool is empty; returns the seconds it took.
    fn drain<F: Future<Output = ()> + Send + 'static>(
        &self,
        run: impl FnOnce(CancellationToken) -> F,
    ) -> Result<f64, Failure> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(fail)?;
        let stop = CancellationToken::new();
        let t = Instant::now();
        Ok(rt.block_on(async {
            let task = tokio::spawn(run(stop.clone()));
            while self.spool.stats(self.sink).count > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let el = t.elapsed().as_secs_f64();
            stop.cancel();
            let _ = task.await;
            el
        }))
    }

    fn print(&self, sites: usize, outage: u64, unit: &str, target: &str, drained: f64) {
        println!("| sites | outage | {unit} spooled | spool size | fill ({unit}/s) | written to {target} ({unit}/s) | catch-up time | faster than real time |");
        println!("|---|---|---|---|---|---|---|---|");
        println!(
            "| {sites} | {outage} s | {} ({} records) | {:.0} MB | {:.0} | {:.0} | {:.1} s | {:.1}x |",
            self.lines,
            self.records,
            self.bytes as f64 / 1e6,
            self.lines as f64 / self.fill_secs,
            self.lines as f64 / drained,
            drained,
            outage as f64 / drained
        );
    }
}

fn state(site: &Arc<str>, dev: &str, s: u64, at: jiff::Timestamp, n: usize) -> Event {
    let values = (0..n)
        .map(|i| {
            (
                format!("point_{i}").into(),
                // What a register with a 0.1 scale decodes to: one decimal, as
                // the daemon publishes it (not 17 significant digits).
                (10_000.0 * (s as f64 + i as f64).sin()).round() / 10.0,
            )
        })
        .collect();
    Event::DeviceState {
        site: site.clone(),
        device: dev.into(),
        at,
        seq: s,
        values,
        invalid: vec![],
    }
}

/// Per site and second: the three devices' events, and `extra(site, second)`.
fn outage_events<'a>(
    sites: usize,
    seconds: u64,
    mut per_site: impl FnMut(&Arc<str>, u64, jiff::Timestamp, &mut Vec<Event>) + 'a,
) -> impl Iterator<Item = Vec<Event>> + 'a {
    let start = jiff::Timestamp::now();
    (0..seconds).map(move |s| {
        let at = start + jiff::SignedDuration::from_secs(s as i64);
        let mut out = Vec::with_capacity(sites * 8);
        for k in 0..sites {
            let site: Arc<str> = format!("site-{k:04}").into();
            per_site(&site, s + k as u64, at, &mut out);
        }
        out
    })
}

pub fn mqtt(sites: usize, outage: u64) -> Outcome {
    use crate::outbox::mqtt::encode;
    use crate::publish::mqtt::{MqttSink, SINK};
    // Three device states a second per site, and a tariff message every 10 s.
    let events = outage_events(sites, outage, |site, s, at, out| {
        for (dev, n) in [("pcs", 12), ("bms", 11), ("meter", 7)] {
            out.push(state(site, dev, s, at, n));
        }
        if s % 10 == 0 {
            out.push(Event::Tariff {
                site: site.clone(),
                at,
                band: "peak".into(),
                price: 1.133067,
                currency: "CNY".into(),
                until: at,
            });
        }
    });
    let o = spool_outage(
        "mqtt",
        SINK,
        events.map(|es| es.iter().filter_map(|e| encode("bessmon", e)).collect()),
    )?;
    let port = free_port()?;
    let conf = o.dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .map_err(fail)?;
    let _broker = spawn(
        "mosquitto",
        &["-c".into(), conf.display().to_string()],
        port,
    )?;
    let m: crate::config::Mqtt =
        toml::from_str(&format!("url = \"mqtt://127.0.0.1:{port}\"")).map_err(fail)?;
    let settings = crate::config::mqtt::check(&m, "bessmon-bench", &o.dir, &mut |k, msg| {
        tracing::error!("{k}: {msg}")
    })
    .ok_or_else(|| fail("the bench's MQTT settings"))?;
    let spool = o.spool.clone();
    let drained = o.drain(move |stop| MqttSink::bare(settings, spool).run(stop))?;
    o.print(sites, outage, "messages", "Mosquitto, QoS 1", drained);
    Ok(())
}

pub fn influx(sites: usize, outage: u64) -> Outcome {
    use crate::account::report::{build, Period};
    use crate::outbox::influx::encode;
    use crate::publish::influx::{InfluxSink, SINK};
    let tariff = crate::account::tariff::TariffCatalog::new(&[])
        .load("cn-chongqing-ci-2025-02")
        .and_then(Result::ok)
        .expect("bundled tariff");
    let mut day = build(
        "x",
        Period::Lifetime,
        &tariff,
        &crate::account::optimum::Terms::new(2000.0, 1000.0),
        &Default::default(),
        &Default::default(),
    );
    for b in ["valley", "flat", "peak", "critical"] {
        day.bands.insert(b.into(), day.total);
    }
    // Telemetry and status of three devices a second per site; the day's savings once a minute.
    let events = outage_events(sites, outage, move |site, s, at, out| {
        for (dev, n) in [("pcs", 12), ("bms", 11), ("meter", 7)] {
            out.push(state(site, dev, s, at, n));
            out.push(Event::PollStatus {
                site: site.clone(),
                device: dev.into(),
                at,
                online: true,
                poll_ms: 3.5,
                errors: 0,
                seq: s,
            });
        }
        if s % 60 == 0 {
            let d = Box::new(day.clone());
            out.push(Event::Savings {
                site: site.clone(),
                at,
                currency: "CNY".into(),
                today: d.clone(),
                month: d.clone(),
                lifetime: d,
            });
        }
    });
    let o = spool_outage(
        "influx",
        SINK,
        events.map(|es| es.iter().filter_map(encode).collect()),
    )?;
    let port = free_port()?;
    let args = [
        format!("-httpListenAddr=127.0.0.1:{port}"),
        format!("-storageDataPath={}", o.dir.join("vm").display()),
        "-loggerLevel=ERROR".into(),
    ];
    let _vm = spawn("victoria-metrics", &args, port)?;
    let c: crate::config::Influx = toml::from_str(&format!(
        "url = \"http://127.0.0.1:{port}\"\nbucket = \"bess\"\nflush_interval = \"100ms\""
    ))
    .map_err(fail)?;
    let settings =
        crate::config::influx::check(&c, &o.dir, &mut |k, msg| tracing::error!("{k}: {msg}"))
            .ok_or_else(|| fail("the bench's InfluxDB settings"))?;
    let sink = InfluxSink::new(settings, o.spool.clone()).map_err(fail)?;
    let drained = o.drain(move |stop| sink.run(stop))?;
    o.print(sites, outage, "lines", "VictoriaMetrics", drained);
    Ok(())
}
