//! The daemon and its pollers: up, ready, per-device poll times, errors by
//! kind, polls, requests, missed polls and whether each device answers.
use super::super::live::{DeviceMetrics, Live, BUCKETS, KINDS};
use super::text::Text;

pub fn write(t: &mut Text, live: &Live) {
    t.family("bessmon_up", "gauge", "1 while the daemon runs.");
    t.sample("bessmon_up", &[], 1);
    t.family(
        "bessmon_build_info",
        "gauge",
        "The running version, as a label (always 1).",
    );
    t.sample(
        "bessmon_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    t.family(
        "bessmon_ready",
        "gauge",
        "1 once every device has been polled (what /readyz answers).",
    );
    t.sample("bessmon_ready", &[], live.ready as u8);

    t.family(
        "bessmon_poll_duration_seconds",
        "histogram",
        "Time to poll a device, all its requests.",
    );
    for (site, dev, m) in live.device_metrics() {
        let l = [("site", &**site), ("device", &**dev)];
        for (b, c) in BUCKETS.iter().zip(m.buckets.iter()) {
            let le = b.to_string();
            t.sample(
                "bessmon_poll_duration_seconds_bucket",
                &[l[0], l[1], ("le", &le)],
                c,
            );
        }
        t.sample(
            "bessmon_poll_duration_seconds_bucket",
            &[l[0], l[1], ("le", "+Inf")],
            m.polls,
        );
        t.sample("bessmon_poll_duration_seconds_sum", &l, m.duration_sum);
        t.sample("bessmon_poll_duration_seconds_count", &l, m.polls);
    }
    t.family(
        "bessmon_poll_errors_total",
        "counter",
        "Failed requests by kind: timeout, exception, transport, decode.",
    );
    for (site, dev, m) in live.device_metrics() {
        for (k, c) in KINDS.iter().zip(m.errors.iter()) {
            t.sample(
                "bessmon_poll_errors_total",
                &[("site", site), ("device", dev), ("kind", k)],
                c,
            );
        }
    }
    type Count = fn(&DeviceMetrics) -> u64;
    let counters: [(&str, &str, Count); 3] = [
        ("bessmon_polls_total", "Polls made.", |m| m.polls),
        ("bessmon_requests_total", "Modbus requests sent.", |m| {
            m.requests
        }),
        (
            "bessmon_missed_polls_total",
            "Scheduled polls skipped because a poll overran its interval.",
            |m| m.missed,
        ),
    ];
    for (name, help, f) in counters {
        t.family(name, "counter", help);
        for (site, dev, m) in live.device_metrics() {
            t.sample(name, &[("site", site), ("device", dev)], f(m));
        }
    }
    t.family(
        "bessmon_device_last_success_timestamp_seconds",
        "gauge",
        "When the device last answered a poll with data (Unix time).",
    );
    for (site, dev, m) in live.device_metrics() {
        if let Some(ms) = m.last_success_ms {
            t.sample(
                "bessmon_device_last_success_timestamp_seconds",
                &[("site", site), ("device", dev)],
                ms as f64 / 1000.0,
            );
        }
    }
    t.family(
        "bessmon_device_online",
        "gauge",
        "1 when the device's last poll was answered.",
    );
    for s in live.sites.values() {
        for (dev, d) in &s.devices {
            t.sample(
                "bessmon_device_online",
                &[("site", &s.id), ("device", dev)],
                d.online as u8,
            );
        }
    }
}
