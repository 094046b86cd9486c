//! The HTTP side of `bessmon run`: health, readiness, the JSON API, metrics
//! and the bearer token.
mod support;

use serde_json::Value;
use support::*;

fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    http(
        "GET",
        port,
        path,
        "",
        token.map(|t| format!("Bearer {t}")).as_deref(),
    )
}

#[test]
fn health_api_metrics_and_savings() {
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    let mut d = Daemon::start(&cfg.path);
    let port = d.http_port();
    assert_eq!(get(port, "/healthz", None).0, 200);
    // Ready once every device has been polled.
    let mut ready = false;
    for _ in 0..200 {
        if get(port, "/readyz", None).0 == 200 {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ready, "/readyz never turned 200");
    d.wait_logs(&["lab/pcs online"]);
    let (code, body) = get(port, "/api/v1/sites", None);
    assert_eq!(code, 200, "{body}");
    let sites: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sites[0]["id"], "lab");
    assert_eq!(sites[0]["devices"], 3);
    let (code, body) = get(port, "/api/v1/sites/lab", None);
    assert_eq!(code, 200);
    let site: Value = serde_json::from_str(&body).unwrap();
    assert!(
        site["soc"]
            .as_f64()
            .is_some_and(|s| (0.0..=100.0).contains(&s)),
        "{site}"
    );
    assert!(site["battery_power_kw"].is_number());
    assert!(
        site["tariff"]["band"].is_string() && site["tariff"]["price"].is_number(),
        "{site}"
    );
    assert!(site["devices"]["pcs"]["values"]["active_power"].is_number());
    assert_eq!(site["devices"]["pcs"]["online"], true);
    assert_eq!(get(port, "/api/v1/sites/nowhere", None).0, 404);
    let (code, body) = get(port, "/api/v1/sites/lab/savings?period=lifetime", None);
    assert_eq!(code, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["period"], "lifetime");
    assert!(r["total"]["savings"].is_number() && r["bands"].is_object());
    // How sure the figures are travels with them.
    for key in [
        "net_savings",
        "overall_efficiency",
        "held_back",
        "quarantined_kwh",
    ] {
        assert!(r.get(key).is_some(), "{key} missing: {r}");
    }
    assert!(r["unattributed"]["intervals"].is_number(), "{r}");
    assert!(r["savings_range"][1].is_number(), "{r}");
    assert_eq!(
        get(port, "/api/v1/sites/lab/savings?period=yesterday", None).0,
        400
    );
    let (code, body) = get(port, "/api/v1/sites/lab/history", None);
    assert_eq!(code, 200);
    let h: Value = serde_json::from_str(&body).unwrap();
    assert!(
        !h["points"].as_array().unwrap().is_empty(),
        "history has the first poll: {h}"
    );
    assert!(
        h["bands"].as_array().unwrap().len() >= 2,
        "24 h of tariff bands: {h}"
    );
    let (code, body) = get(port, "/api/v1/sites/lab/days?period=lifetime", None);
    assert_eq!(code, 200, "{body}");
    let (code, page) = get(port, "/", None);
    assert_eq!(code, 200);
    assert!(page.contains("/api/v1/sites"), "the dashboard page");
    let (code, text) = get(port, "/metrics", None);
    assert_eq!(code, 200);
    for name in [
        "bessmon_poll_duration_seconds_bucket{site=\"lab\",device=\"pcs\",le=\"0.005\"}",
        "bessmon_poll_errors_total{site=\"lab\",device=\"meter\",kind=\"timeout\"}",
        "bessmon_requests_total{site=\"lab\",device=\"bms\"}",
        "bessmon_missed_polls_total",
        "bessmon_device_online{site=\"lab\",device=\"pcs\"} 1",
        "bessmon_net_savings_today{site=\"lab\",currency=\"CNY\"}",
        "bessmon_ready 1",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    parsed_by_the_reference_client(&text);
    assert_eq!(d.terminate(), Some(0));
}

/// Python's prometheus_client (Debian's package) reads every family with
/// the type it declares, and the histogram adds up.
fn parsed_by_the_reference_client(text: &str) {
    use std::io::Write as _;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/parse_metrics.py");
    let mut child = std::process::Command::new(python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the reference parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let family = |name: &str| {
        families
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name} in {families:?}"))
    };
    // The parser strips `_total` from counter family names.
    for (name, kind) in [
        ("bessmon_up", "gauge"),
        ("bessmon_poll_duration_seconds", "histogram"),
        ("bessmon_poll_errors", "counter"),
        ("bessmon_polls", "counter"),
        ("bessmon_counter_anomalies", "counter"),
        ("bessmon_net_savings_today", "gauge"),
    ] {
        assert_eq!(family(name)["type"], kind, "{name}");
    }
    let h = family("bessmon_poll_duration_seconds")["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["labels"]["device"] == "pcs")
        .cloned()
        .collect::<Vec<_>>();
    let value = |name: &str, le: Option<&str>| {
        h.iter()
            .find(|s| s["name"] == name && le.is_none_or(|le| s["labels"]["le"] == le))
            .unwrap_or_else(|| panic!("{name} {le:?} in {h:?}"))["value"]
            .as_f64()
            .unwrap()
    };
    let count = value("bessmon_poll_duration_seconds_count", None);
    assert!(count >= 1.0);
    assert_eq!(
        value("bessmon_poll_duration_seconds_bucket", Some("+Inf")),
        count
    );
}

#[test]
fn the_bearer_token_guards_everything_but_the_probes() {
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    cfg.protect_api("t0ken");
    let mut d = Daemon::start(&cfg.path);
    let port = d.http_port();
    // Kubernetes probes cannot carry a token; they reveal nothing.
    assert_eq!(get(port, "/healthz", None).0, 200);
    assert_ne!(get(port, "/readyz", None).0, 401);
    for path in [
        "/metrics",
        "/api/v1/sites",
        "/api/v1/sites/lab",
        "/api/v1/sites/lab/savings?period=lifetime",
    ] {
        assert_eq!(get(port, path, None).0, 401, "{path} without a token");
        assert_eq!(
            get(port, path, Some("wrong")).0,
            401,
            "{path} with a wrong token"
        );
        assert_ne!(
            get(port, path, Some("t0ken")).0,
            401,
            "{path} with the token"
        );
        let sep = if path.contains('?') { '&' } else { '?' };
        assert_eq!(
            get(port, &format!("{path}{sep}token=t0ken"), None).0,
            401,
            "{path}: never a token in the URL"
        );
    }
    // The dashboard page itself is static and public; its data is not.
    let (code, page) = get(port, "/", None);
    assert_eq!(code, 200);
    assert!(
        page.contains("<title>bessmon</title>") && page.contains("token-form"),
        "the page, which asks for the token"
    );
    assert_eq!(d.terminate(), Some(0));
    // A scraper that cannot send a token: /metrics made public, the rest not.
    let text = std::fs::read_to_string(&cfg.path)
        .unwrap()
        .replace("[daemon]\n", "[daemon]\nmetrics_public = true\n");
    std::fs::write(&cfg.path, text).unwrap();
    let mut d = Daemon::start(&cfg.path);
    let port = d.http_port();
    assert_eq!(get(port, "/metrics", None).0, 200);
    assert_eq!(get(port, "/api/v1/sites", None).0, 401);
    assert_eq!(d.terminate(), Some(0));
}

#[test]
fn bessmon_health_asks_a_running_daemon() {
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    let mut d = Daemon::start(&cfg.path);
    let port = d.http_port();
    let out = cli(&["health", "--address", &format!("127.0.0.1:{port}")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert_eq!(d.terminate(), Some(0));
    let out = cli(&["health", "--address", &format!("127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(2), "nothing listens any more");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/healthz"));
}

/// What the server sends back on a raw connection before closing it, or
/// until `within` passes.
fn answer_of(s: &mut std::net::TcpStream, within: std::time::Duration) -> String {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Large headers, request bodies, clients that never finish their headers
/// and more connections than the limit: each is refused without harm, and
/// the API answers again once they are gone.
#[test]
fn the_http_server_bounds_headers_bodies_slow_clients_and_connections() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    let mut d = Daemon::start(&cfg.path);
    let port = d.http_port();
    let connect = || TcpStream::connect(("127.0.0.1", port)).unwrap();

    // A header beyond 16 KiB.
    let mut s = connect();
    let big = "x".repeat(20 << 10);
    write!(
        s,
        "GET /api/v1/status HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let a = answer_of(&mut s, Duration::from_secs(10));
    assert!(a.starts_with("HTTP/1.1 431"), "a 20 KiB header: {a:.80}");

    // A body of a megabyte to an API that reads none.
    let mut s = connect();
    let body = vec![b'b'; 1 << 20];
    write!(
        s,
        "POST /api/v1/status HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let _ = s.write_all(&body);
    let a = answer_of(&mut s, Duration::from_secs(10));
    assert!(
        a.starts_with("HTTP/1.1 405") || a.starts_with("HTTP/1.1 413"),
        "a 1 MiB body: {a:.80}"
    );

    // A client that starts a request and never finishes its headers is cut off.
    let mut slow = connect();
    slow.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    let started = Instant::now();
    let a = answer_of(&mut slow, Duration::from_secs(30));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the half-sent request was closed after {:?} (the header timeout is 10 s): {a:.80}",
        started.elapsed()
    );

    // 64 idle connections take every slot; the next is refused at once.
    let idle: Vec<TcpStream> = (0..64).map(|_| connect()).collect();
    let mut extra = connect();
    let a = answer_of(&mut extra, Duration::from_secs(10));
    assert!(a.starts_with("HTTP/1.1 503"), "connection 65: {a:.80}");
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Refused connections are reset, which the `http` helper takes as a failure.
        let mut s = connect();
        let _ = s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let a = answer_of(&mut s, Duration::from_secs(10));
        if a.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the API did not answer again within 20 s of the idle connections closing (last {a:.40})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.terminate(), Some(0));
}
