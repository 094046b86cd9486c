//! `bessmon run --shard i/n`: n daemons over one config poll every site exactly once.
mod support;

use std::sync::atomic::Ordering::Relaxed;

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
    for (k, site) in sim.sim.sites.iter().enumerate() {
        wait_for_requests(site, 5, &format!("site-{k}'s first polls"));
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

#[test]
fn a_shard_that_owns_no_sites_stays_up_and_ready() {
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    // The one site "lab" belongs to one of two shards; start the other.
    let empty = 1 - bessmon::config::shard::Shard::of("lab", 2);
    let mut d = Daemon::start_with(&cfg.path, &["--shard", &format!("{empty}/2")]);
    let port = d.http_port();
    d.wait_log("owns no sites");
    let (code, body) = http("GET", port, "/readyz", "", None);
    assert_eq!(
        (code, body.as_str()),
        (200, "ready: this instance owns no sites\n")
    );
    assert_eq!(http("GET", port, "/healthz", "", None).0, 200);
    // Still serving after the moment an empty channel used to end it.
    let (code, sites) = http("GET", port, "/api/v1/sites", "", None);
    assert_eq!((code, sites.as_str()), (200, "[]"));
    assert!(d.proc.0.try_wait().unwrap().is_none(), "the daemon exited");
    assert_eq!(d.terminate(), Some(0));
}

#[test]
fn a_site_moved_to_another_shard_takes_its_ledger_along_exactly() {
    let sim = charging_site();
    // The old instance books a while, then the site moves away.
    let old = sim_site_config(&sim);
    let mut d = Daemon::start(&old.path);
    wait_for_requests(&sim.sim.sites[0], 40, "the old instance's polls");
    assert_eq!(d.terminate(), Some(0));
    let before = lifetime_report(&old);
    assert!(
        before["total"]["charge_kwh"].as_f64().unwrap() > 0.0,
        "energy booked: {before}"
    );

    let file = old.dir.path().join("lab.ledger.json");
    let out = cli(&[
        "ledger",
        "export",
        "-c",
        old.path.to_str().unwrap(),
        "--site",
        "lab",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The new instance: same config, its own state directory.
    let new = sim_site_config(&sim);
    let import = |extra: &[&str]| {
        let mut args = vec![
            "ledger",
            "import",
            "-c",
            new.path.to_str().unwrap(),
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let out = import(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lifetime_report(&new),
        before,
        "the same report, to the Wh and the day"
    );
    // Importing over a ledger is refused unless asked for.
    let out = import(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--replace"));
    assert!(import(&["--replace"]).status.success());
    // Not while a daemon holds the state directory.
    let mut running = Daemon::start(&new.path);
    running.http_port();
    let out = import(&["--replace"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stop it first"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(running.terminate(), Some(0));
}
