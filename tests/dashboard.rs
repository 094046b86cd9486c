//! The dashboard in a real browser: `bessmon demo` runs, Debian's headless
//! Chromium renders `/`, and the page must show the SOC and savings the API
//! reports, and keep refreshing. A screenshot is kept in target/ for people.
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::*;

fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(require("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=12000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element with `id` in a dumped DOM.
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    rest[open..open + close].trim().to_string()
}

#[test]
fn the_dashboard_shows_what_the_api_says_and_updates() {
    let (_demo, url, port) = demo(2);
    let site = |id: &str| -> Value {
        serde_json::from_str(&http("GET", port, &format!("/api/v1/sites/{id}"), "", None).1)
            .unwrap()
    };
    // Wait until the API has everything the page shows.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = site("demo-0");
        if s["soc"].is_number() && s["today"]["total"]["savings"].is_number() {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "30 s without SOC and savings from the API: {s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let before = site("demo-0");
    let dom = chromium(&["--dump-dom"], &url);
    let after = site("demo-0");
    let between = |shown: &str, a: f64, b: f64, digits: i32| {
        let v: f64 = shown
            .parse()
            .unwrap_or_else(|_| panic!("`{shown}` is not a number"));
        let r = 10f64.powi(digits);
        let (lo, hi) = (a.min(b), a.max(b));
        v >= (lo * r).round() / r - 1.0 / r && v <= (hi * r).round() / r + 1.0 / r
    };
    let soc = text_of(&dom, "soc-demo-0");
    assert!(
        between(
            &soc,
            before["soc"].as_f64().unwrap(),
            after["soc"].as_f64().unwrap(),
            1
        ),
        "page SOC {soc}, API {} .. {}",
        before["soc"],
        after["soc"]
    );
    let saved = text_of(&dom, "savings-today-demo-0");
    let (a, b) = (
        before["today"]["net_savings"].as_f64().unwrap(),
        after["today"]["net_savings"].as_f64().unwrap(),
    );
    assert!(
        between(&saved, a, b, 2),
        "page net savings {saved}, API {a} .. {b}"
    );
    assert!(
        dom.contains("net savings today"),
        "the headline says it is net"
    );
    assert!(dom.contains("id=\"site-demo-1\""), "every site has a card");
    assert!(
        dom.contains("schedule efficiency today"),
        "the card shows the day against its optimum"
    );
    if after["today"]["schedule_efficiency"].is_number() {
        assert!(
            dom.contains(" % of "),
            "the efficiency and the optimum it is of: {}",
            after["today"]
        );
    }
    let refreshes: u32 = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("refresh counter");
    assert!(refreshes >= 2, "the page refreshes by itself ({refreshes})");
    assert!(dom.contains("<rect"), "the charts are drawn");

    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png");
    // target/ is absent when CARGO_TARGET_DIR points elsewhere.
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1100",
        ],
        &url,
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "screenshot at {}",
        shot.display()
    );
}

/// `bessmon demo` with `sites` sites; its dashboard URL and HTTP port.
fn demo(sites: usize) -> (Proc, String, u16) {
    let mut child = Command::new(bin())
        .args([
            "demo",
            "--http",
            "127.0.0.1:0",
            "--sites",
            &sites.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    std::thread::spawn(move || for _ in lines {});
    let url = first.strip_prefix("dashboard: ").unwrap().to_string();
    let port: u16 = url
        .trim_end_matches('/')
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    wait_for_port(port);
    (Proc(child), url, port)
}

/// The fleet table's rows in the order shown: (site id, has problems).
fn fleet_rows(dom: &str) -> Vec<(String, bool)> {
    let body = dom
        .split("id=\"fleet-rows\"")
        .nth(1)
        .and_then(|b| b.split("</tbody>").next())
        .unwrap_or("");
    body.split("<tr class=\"site")
        .skip(1)
        .filter_map(|r| {
            let id = r.split("data-id=\"").nth(1)?.split('"').next()?.to_string();
            Some((id, r.starts_with(" problem")))
        })
        .collect()
}

#[test]
fn three_hundred_sites_open_on_a_fleet_view_in_natural_order() {
    let (_demo, url, port) = demo(300);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, body) = http("GET", port, "/api/v1/sites", "", None);
        let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let ready = list.as_array().is_some_and(|l| {
            l.len() == 300 && l.iter().all(|s| s["net_savings_month"].is_number())
        });
        if ready {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "300 sites with savings within 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let dom = chromium(&["--dump-dom"], &url);
    let rows = fleet_rows(&dom);
    assert_eq!(rows.len(), 300, "one row per site");
    // Sites with problems (a device that missed a poll on a loaded machine)
    // come first; the rest in natural order: demo-2 before demo-10.
    let first_fine = rows.iter().position(|(_, p)| !p).unwrap_or(rows.len());
    assert!(
        rows[first_fine..].iter().all(|(_, p)| !p),
        "problems first: {rows:?}"
    );
    let fine: Vec<&str> = rows[first_fine..]
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    let mut natural = fine.clone();
    natural.sort_by_key(|id| id.trim_start_matches("demo-").parse::<u32>().unwrap());
    assert_eq!(fine, natural, "natural order");
    assert!(dom.contains("300 of 300 sites"));
    assert!(
        dom.contains("<tfoot id=\"fleet-totals\"><tr><td>300 sites</td><td>"),
        "fleet totals"
    );
    let refreshes: u32 = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("refresh counter");
    assert!(
        refreshes >= 2,
        "the page keeps refreshing with 300 sites ({refreshes})"
    );

    // A filter narrows the table.
    let dom = chromium(&["--dump-dom"], &format!("{url}?filter=demo-29"));
    let mut rows: Vec<String> = fleet_rows(&dom).into_iter().map(|(id, _)| id).collect();
    rows.sort();
    let mut want: Vec<String> = std::iter::once("demo-29".to_string())
        .chain((290..300).map(|k| format!("demo-{k}")))
        .collect();
    want.sort();
    assert_eq!(rows, want);

    // A site's row opens its card, times in the site's zone.
    let dom = chromium(&["--dump-dom"], &format!("{url}#site=demo-7"));
    assert!(dom.contains("id=\"site-demo-7\""), "the card of demo-7");
    assert!(
        !dom.contains("id=\"site-demo-8\""),
        "only the chosen site's card"
    );
    let tz = http("GET", port, "/api/v1/sites/demo-7", "", None).1;
    let tz: Value = serde_json::from_str(&tz).unwrap();
    let zone = tz["timezone"].as_str().unwrap();
    assert!(
        dom.contains(&format!("({zone})")),
        "the band's end in {zone}"
    );
}

#[test]
fn behind_a_token_the_page_asks_for_it_and_shows_nothing_else() {
    let sim = simulator(1);
    let cfg = sim_site_config(&sim);
    cfg.protect_api("t0ken");
    let mut d = Daemon::start(&cfg.path);
    let url = format!("http://127.0.0.1:{}/", d.http_port());
    let dom = chromium(&["--dump-dom"], &url);
    assert!(
        dom.contains("<form id=\"token-form\" style"),
        "the token form is shown"
    );
    assert!(
        !dom.contains("id=\"site-lab\""),
        "no site without the token"
    );
    // A link with ?token= hands it to the page, which then shows the site.
    let dom = chromium(&["--dump-dom"], &format!("{url}?token=t0ken"));
    assert!(dom.contains("id=\"site-lab\""), "the site with the token");
    assert_eq!(d.terminate(), Some(0));
}
