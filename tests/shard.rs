//! `bessmon run --shard i/n`: n daemons over one config poll every site exactly once.
mod support;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use support::*;

#[test]
fn two_shards_poll_every_site_exactly_once() {
    let sim = simulator(8);
    let body: String = sim
        .sim
        .addrs
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let t = format!(
                "{{ type = \"tcp\", host = \"127.0.0.1\", port = {} }}",
                a.port()
            );
            sized_site_toml(
                "200ms",
                2000.0,
                1000.0,
                &device_toml("pcs", "bessmon-sim-pcs", 1, "1s", &t),
            )
            .replace("id = \"lab\"", &format!("id = \"site-{k}\""))
        })
        .collect();
    // Same config, each daemon its own state directory.
    let (a, b) = (TestConfig::new(&body), TestConfig::new(&body));
    let run = |cfg: &TestConfig, shard: &str| {
        let child = std::process::Command::new(bin())
            .args(["run", "--shard", shard, "-c"])
            .arg(&cfg.path)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Proc(child)
    };
    let (_da, _db) = (run(&a, "0/2"), run(&b, "1/2"));
    for site in &sim.sim.sites {
        while site.requests.load(Relaxed) < 5 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Every site polled, each over exactly one connection: by one daemon only.
    for (k, site) in sim.sim.sites.iter().enumerate() {
        assert_eq!(
            site.connections.load(Relaxed),
            1,
            "site-{k} was polled by {} daemons",
            site.connections.load(Relaxed)
        );
    }
    let out = std::process::Command::new(bin())
        .args(["run", "--shard", "2/2", "-c"])
        .arg(&a.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a bad shard is invalid input");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a shard"));
}
