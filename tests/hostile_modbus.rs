//! A hostile Modbus/TCP gateway between bessmon and the simulator. Its
//! hostile units answer with a charging battery's real registers in frames
//! that lie: wrong transaction or unit ids, MBAP lengths and byte counts that
//! disagree with what follows, frames cut short by a close or a reset,
//! exception codes, and replies trickled one byte per second. The neighbours
//! on the same gateway get honest replies, one of them split byte by byte.
//!
//! bessmon must not panic, must book no energy for the hostile sites (a frame
//! it accepted would move their counters), and the neighbours must keep their
//! poll rate with no errors.
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Lie {
    LengthTooShort,
    Trickle,
    WrongTransaction,
    ResetMidFrame,
    WrongUnit,
    LengthTooLong,
    ByteCountLies,
    Truncated,
    Exception,
}

/// The order the gateway's shared hostile unit goes through: the lies that
/// could poison the neighbours' connection first.
const LIES: [Lie; 9] = [
    Lie::LengthTooShort,
    Lie::Trickle,
    Lie::WrongTransaction,
    Lie::ResetMidFrame,
    Lie::WrongUnit,
    Lie::LengthTooLong,
    Lie::ByteCountLies,
    Lie::Truncated,
    Lie::Exception,
];

/// Unit on the shared gateway that cycles through every lie.
const CYCLING_UNIT: u8 = 9;
/// Units 11.. each tell one lie, always (`LIES[unit - 11]`).
const FIRST_FIXED_UNIT: u8 = 11;

type Served = Arc<Mutex<HashMap<(u8, Lie), u32>>>;

struct Gateway {
    port: u16,
    served: Served,
    _rt: tokio::runtime::Runtime,
}

impl Gateway {
    fn served(&self, unit: u8, lie: Lie) -> u32 {
        *self.served.lock().unwrap().get(&(unit, lie)).unwrap_or(&0)
    }

    fn served_by(&self, unit: u8) -> u32 {
        LIES.iter().map(|l| self.served(unit, *l)).sum()
    }
}

async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut f = vec![0u8; 7];
    s.read_exact(&mut f).await?;
    let len = u16::from_be_bytes([f[4], f[5]]) as usize;
    let mut pdu = vec![0u8; len.saturating_sub(1)];
    s.read_exact(&mut pdu).await?;
    f.extend_from_slice(&pdu);
    Ok(f)
}

async fn ask(upstream: &mut TcpStream, request: &[u8]) -> std::io::Result<Vec<u8>> {
    upstream.write_all(request).await?;
    read_frame(upstream).await
}

/// Tells `lie` with the honest `reply`. `Err` ends the connection.
async fn lie_with(client: &mut TcpStream, lie: Lie, mut reply: Vec<u8>) -> std::io::Result<()> {
    let set_len = |f: &mut Vec<u8>, len: usize| {
        let l = (len as u16).to_be_bytes();
        f[4] = l[0];
        f[5] = l[1];
    };
    let half = reply.len() / 2;
    match lie {
        Lie::WrongTransaction => reply[0] ^= 0xA5,
        Lie::WrongUnit => reply[6] ^= 0x40,
        Lie::LengthTooLong => {
            let len = reply.len() - 6 + 6;
            set_len(&mut reply, len);
        }
        Lie::LengthTooShort => {
            let len = reply.len() - 6 - 2;
            set_len(&mut reply, len);
        }
        // Registers: function, byte count, data. Claim two bytes fewer.
        Lie::ByteCountLies => reply[8] = reply[8].saturating_sub(2),
        Lie::Truncated => {
            client.write_all(&reply[..half]).await?;
            client.shutdown().await?;
            return Err(std::io::ErrorKind::ConnectionAborted.into());
        }
        Lie::ResetMidFrame => {
            client.write_all(&reply[..half]).await?;
            client.set_zero_linger()?;
            return Err(std::io::ErrorKind::ConnectionReset.into());
        }
        Lie::Exception => {
            let function = reply[7] | 0x80;
            reply.truncate(7);
            reply.extend_from_slice(&[function, 0x04]);
            set_len(&mut reply, 3);
        }
        Lie::Trickle => {
            for b in &reply {
                client.write_all(&[*b]).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            return Ok(());
        }
    }
    client.write_all(&reply).await
}

async fn serve_client(
    mut client: TcpStream,
    honest: SocketAddr,
    charging: SocketAddr,
    served: Served,
    cycle: Arc<Mutex<usize>>,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut up_honest = TcpStream::connect(honest).await?;
    let mut up_charging = TcpStream::connect(charging).await?;
    loop {
        let mut request = read_frame(&mut client).await?;
        let unit = request[6];
        let lie = match unit {
            CYCLING_UNIT => {
                let mut c = cycle.lock().unwrap();
                *c += 1;
                Some(LIES[(*c - 1) % LIES.len()])
            }
            u if (FIRST_FIXED_UNIT..FIRST_FIXED_UNIT + LIES.len() as u8).contains(&u) => {
                Some(LIES[(u - FIRST_FIXED_UNIT) as usize])
            }
            _ => None,
        };
        match lie {
            None => {
                let reply = ask(&mut up_honest, &request).await?;
                if unit == 1 {
                    // Honest, but one byte per segment.
                    for b in &reply {
                        client.write_all(&[*b]).await?;
                        client.flush().await?;
                        tokio::task::yield_now().await;
                    }
                } else {
                    client.write_all(&reply).await?;
                }
            }
            Some(lie) => {
                // The charging battery's PCS (unit 1 of the other simulator),
                // answered as if from the hostile unit.
                request[6] = 1;
                let mut reply = ask(&mut up_charging, &request).await?;
                reply[6] = unit;
                *served.lock().unwrap().entry((unit, lie)).or_default() += 1;
                lie_with(&mut client, lie, reply).await?;
            }
        }
    }
}

fn gateway(honest: SocketAddr, charging: SocketAddr) -> Gateway {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind the gateway");
    let port = listener.local_addr().unwrap().port();
    let served: Served = Arc::default();
    let cycle = Arc::new(Mutex::new(0));
    let s = served.clone();
    rt.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(serve_client(
                client,
                honest,
                charging,
                s.clone(),
                cycle.clone(),
            ));
        }
    });
    Gateway {
        port,
        served,
        _rt: rt,
    }
}

fn transport(port: u16) -> String {
    format!("{{ type = \"tcp\", host = \"127.0.0.1\", port = {port} }}")
}

fn site(id: &str, devices: &str) -> String {
    format!(
        "\n[[sites]]\nid = \"{id}\"\ntariff = \"cn-chongqing-ci-2025-02\"\ncapacity_kwh = 2000\nrated_power_kw = 1000\npoll_interval = \"500ms\"\n{devices}"
    )
}

fn polls(d: &Daemon, site: &str, device: &str, what: &str) -> f64 {
    d.metric(&format!("{what}{{site=\"{site}\",device=\"{device}\"}}"))
        .unwrap_or(0.0)
}

#[test]
fn a_hostile_gateway_neither_crashes_the_daemon_nor_books_energy_nor_slows_its_neighbours() {
    let honest = simulator(1);
    let charging = charging_site();
    let shared = gateway(honest.sim.addrs[0], charging.sim.addrs[0]);
    let own = gateway(honest.sim.addrs[0], charging.sim.addrs[0]);

    let mut body = site(
        "lab",
        &[("pcs", 1), ("bms", 2), ("meter", 3)]
            .iter()
            .map(|(id, u)| {
                device_toml(
                    id,
                    &format!("bessmon-sim-{id}"),
                    *u,
                    "1s",
                    &transport(shared.port),
                )
            })
            .collect::<String>(),
    );
    body += &site(
        "hostile",
        &device_toml(
            "pcs",
            "bessmon-sim-pcs",
            CYCLING_UNIT,
            "300ms",
            &transport(shared.port),
        ),
    );
    for k in 0..LIES.len() as u8 {
        body += &site(
            &format!("hostile-{k}"),
            &device_toml(
                "pcs",
                "bessmon-sim-pcs",
                FIRST_FIXED_UNIT + k,
                "300ms",
                &transport(own.port),
            ),
        );
    }
    let cfg = TestConfig::new(&body);
    let d = Daemon::start(&cfg.path);
    d.wait_logs(&["lab/pcs online", "lab/bms online", "lab/meter online"]);
    let start = Instant::now();
    let before: Vec<f64> = ["pcs", "bms", "meter"]
        .iter()
        .map(|dev| polls(&d, "lab", dev, "bessmon_polls_total"))
        .collect();

    // Every lie told at least twice by its own unit, and the shared gateway's
    // unit through its first four (those that could poison the connection).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let fixed_done = LIES
            .iter()
            .enumerate()
            .all(|(k, l)| own.served(FIRST_FIXED_UNIT + k as u8, *l) >= 2);
        if fixed_done && shared.served_by(CYCLING_UNIT) >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "within 90 s the hostile units were asked: {:?} (shared unit: {})",
            own.served.lock().unwrap(),
            shared.served_by(CYCLING_UNIT)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = start.elapsed();

    // The neighbours kept their 500 ms rate, without an error.
    let due = (elapsed.as_secs_f64() / 0.5).floor();
    for (i, dev) in ["pcs", "bms", "meter"].iter().enumerate() {
        let made = polls(&d, "lab", dev, "bessmon_polls_total") - before[i];
        assert!(
            made >= due - 2.0,
            "lab/{dev} made {made} polls in {elapsed:?}, {due} were due"
        );
        assert_eq!(
            polls(&d, "lab", dev, "bessmon_poll_errors_total"),
            0.0,
            "lab/{dev} saw errors"
        );
    }

    // Nothing a hostile unit sent was booked.
    let port = d.http_port();
    let mut checked = 0;
    for s in std::iter::once("hostile".to_string())
        .chain((0..LIES.len()).map(|k| format!("hostile-{k}")))
    {
        let (code, body) = http(
            "GET",
            port,
            &format!("/api/v1/sites/{s}/savings?period=lifetime"),
            "",
            None,
        );
        assert_eq!(code, 200, "{s}: {body}");
        let r: Value = serde_json::from_str(&body).unwrap();
        for key in ["charge_kwh", "discharge_kwh"] {
            assert_eq!(
                r["total"][key].as_f64(),
                Some(0.0),
                "{s} booked {key} from a hostile reply: {body}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 1 + LIES.len());

    let (code, lines) = d.finish();
    assert_eq!(code, Some(0), "the daemon exits cleanly");
    assert!(
        !lines.iter().any(|l| l.contains("panicked")),
        "a panic was logged"
    );
}
