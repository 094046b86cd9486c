//! What a write's answer means, and what the sink does next: the sink's
//! state transitions as plain functions, so each rule has a test and the
//! loop in `sink` only carries them out.
use std::time::Duration;

use crate::backoff::Backoff;

/// The longest the sink waits before trying a batch again, whatever the
/// server's Retry-After says.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

#[derive(Debug, PartialEq)]
pub(super) enum WriteOutcome {
    Written,
    /// Worth trying again (network, 429, 5xx), perhaps after the server's delay.
    Retry(String, Option<Duration>),
    /// 413: the body is over a limit.
    TooLarge(String),
    /// 400 or 422: the server says the data is bad.
    BadData(String),
    /// 401, 403, 404 or another 4xx: the sink is set up wrong (a token, a
    /// bucket, a URL). The data is good; it waits until the setup is fixed.
    Misconfigured(Misconfig, String),
}

/// What kind of setup error, for logs and `bessmon_sink_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misconfig {
    Unauthorized,
    Forbidden,
    NotFound,
    OtherClientError,
}

impl Misconfig {
    pub const ALL: [Misconfig; 4] = [
        Misconfig::Unauthorized,
        Misconfig::Forbidden,
        Misconfig::NotFound,
        Misconfig::OtherClientError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Misconfig::Unauthorized => "unauthorized",
            Misconfig::Forbidden => "forbidden",
            Misconfig::NotFound => "not_found",
            Misconfig::OtherClientError => "client_error",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Misconfig::Unauthorized => "check influxdb.token (v2) or username and password (v1)",
            Misconfig::Forbidden => "the credentials may not write to this bucket or database",
            Misconfig::NotFound => "check influxdb.url, bucket or database, and org",
            Misconfig::OtherClientError => "the server refuses every write as configured",
        }
    }
}

/// Retry-After as delay-seconds or an HTTP date (RFC 9110 section 10.2.3).
pub(super) fn retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(v).ok()?;
    // A date in the past means "now".
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// The outcome of an HTTP answer that is not a success.
pub(super) fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> WriteOutcome {
    let msg = format!(
        "HTTP {status}{}: {}",
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map(|r| format!(" {r}"))
            .unwrap_or_default(),
        body.trim().chars().take(500).collect::<String>()
    );
    let misconfig = |m: Misconfig| WriteOutcome::Misconfigured(m, format!("{msg} ({})", m.hint()));
    match status {
        200..=299 => WriteOutcome::Written,
        429 | 500..=599 => WriteOutcome::Retry(msg, retry_after),
        413 => WriteOutcome::TooLarge(msg),
        400 | 422 => WriteOutcome::BadData(msg),
        401 => misconfig(Misconfig::Unauthorized),
        403 => misconfig(Misconfig::Forbidden),
        404 => misconfig(Misconfig::NotFound),
        _ => misconfig(Misconfig::OtherClientError),
    }
}

/// What the sink does with a batch after its write.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    /// Written: remove it from the spool and go on.
    Ack,
    /// Too large, but divisible: write it again at most `lines` lines a batch.
    Shrink { lines: usize, msg: String },
    /// Bad data somewhere in it: write it again in halves (at most `lines`
    /// lines a batch) until the bad records are alone, then go back to full
    /// batches.
    Isolate { lines: usize, msg: String },
    /// One record the server calls bad: keep it in a dead-letter file,
    /// remove it, go on.
    DeadLetter(String),
    /// Keep it and write it again after `delay`; `setup` when the sink is
    /// set up wrong (logged as an error, and the sink reported failing).
    Retry {
        msg: String,
        delay: Duration,
        setup: Option<Misconfig>,
    },
}

/// The step for a batch of `records` spool records holding `lines` lines.
/// A batch of one record that is too large or bad cannot be split (a record
/// is one event), so it is dead-lettered rather than retried forever. A
/// setup error never loses data: it is retried until the setup is fixed.
pub(super) fn step(
    outcome: WriteOutcome,
    records: usize,
    lines: u64,
    backoff: &mut Backoff,
) -> Step {
    match outcome {
        WriteOutcome::Written => {
            backoff.reset();
            Step::Ack
        }
        WriteOutcome::TooLarge(msg) if records > 1 => Step::Shrink {
            lines: (lines as usize / 2).max(1),
            msg,
        },
        WriteOutcome::BadData(msg) if records > 1 => Step::Isolate {
            lines: (lines as usize / 2).max(1),
            msg,
        },
        WriteOutcome::TooLarge(msg) | WriteOutcome::BadData(msg) => Step::DeadLetter(msg),
        WriteOutcome::Retry(msg, after) => Step::Retry {
            msg,
            delay: after
                .unwrap_or_else(|| backoff.next_delay())
                .min(MAX_RETRY_DELAY),
            setup: None,
        },
        WriteOutcome::Misconfigured(kind, msg) => Step::Retry {
            msg,
            delay: backoff.next_delay(),
            setup: Some(kind),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now: jiff::Timestamp = "2026-11-28T21:00:00Z".parse().unwrap();
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Sat, 28 Nov 2026 21:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sat, 28 Nov 2026 20:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn statuses_sort_into_retry_shrink_and_reject() {
        let later = Some(Duration::from_secs(9));
        assert_eq!(classify(204, "", None), WriteOutcome::Written);
        assert_eq!(
            classify(429, "slow down\n", later),
            WriteOutcome::Retry("HTTP 429 Too Many Requests: slow down".into(), later)
        );
        assert!(matches!(
            classify(503, "", None),
            WriteOutcome::Retry(_, None)
        ));
        assert!(matches!(classify(413, "", None), WriteOutcome::TooLarge(_)));
        let WriteOutcome::BadData(msg) = classify(400, &"x".repeat(2000), None) else {
            panic!("a 400 is bad data")
        };
        assert_eq!(
            msg.len(),
            "HTTP 400 Bad Request: ".len() + 500,
            "bodies are cut"
        );
        assert!(matches!(classify(422, "", None), WriteOutcome::BadData(_)));
        for (status, kind) in [
            (401, Misconfig::Unauthorized),
            (403, Misconfig::Forbidden),
            (404, Misconfig::NotFound),
            (405, Misconfig::OtherClientError),
        ] {
            let WriteOutcome::Misconfigured(k, msg) = classify(status, "{\"message\":\"x\"}", None)
            else {
                panic!("{status} is a setup error, not bad data")
            };
            assert_eq!(k, kind);
            assert!(msg.starts_with(&format!("HTTP {status}")), "{msg}");
        }
    }

    #[test]
    fn each_outcome_has_one_step() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let retry = |msg: &str, after| WriteOutcome::Retry(msg.into(), after);
        // The server's delay is honoured, up to five minutes.
        assert_eq!(
            step(retry("x", Some(Duration::from_secs(3600))), 1, 1, &mut b),
            Step::Retry {
                msg: "x".into(),
                delay: MAX_RETRY_DELAY,
                setup: None,
            }
        );
        // Without one, backoff grows until a write succeeds.
        let Step::Retry { delay, .. } = step(retry("x", None), 1, 1, &mut b) else {
            panic!()
        };
        assert!(delay <= Duration::from_millis(500));
        step(retry("x", None), 1, 1, &mut b);
        assert_eq!(b.attempts(), 2);
        assert_eq!(step(WriteOutcome::Written, 3, 30, &mut b), Step::Ack);
        assert_eq!(b.attempts(), 0, "a success resets the backoff");
        let big = || WriteOutcome::TooLarge("HTTP 413".into());
        let shrink = |lines| Step::Shrink {
            lines,
            msg: "HTTP 413".into(),
        };
        assert_eq!(step(big(), 10, 5000, &mut b), shrink(2500));
        assert_eq!(step(big(), 2, 1, &mut b), shrink(1));
        assert_eq!(
            step(big(), 1, 60, &mut b),
            Step::DeadLetter("HTTP 413".into()),
            "one event cannot be split"
        );
        let bad = || WriteOutcome::BadData("HTTP 400".into());
        assert_eq!(
            step(bad(), 5, 10, &mut b),
            Step::Isolate {
                lines: 5,
                msg: "HTTP 400".into()
            },
            "halves until the bad record is alone"
        );
        assert_eq!(
            step(bad(), 1, 3, &mut b),
            Step::DeadLetter("HTTP 400".into())
        );
    }

    #[test]
    fn a_setup_error_keeps_the_data_and_backs_off() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let refused = || WriteOutcome::Misconfigured(Misconfig::Unauthorized, "HTTP 401".into());
        let delays: Vec<Duration> = (0..10)
            .map(|_| match step(refused(), 100, 100, &mut b) {
                Step::Retry {
                    delay,
                    setup: Some(Misconfig::Unauthorized),
                    ..
                } => delay,
                other => panic!("a bad token must not lose data: {other:?}"),
            })
            .collect();
        assert!(delays[9] > delays[0], "{delays:?}");
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(60)));
    }
}
