//! The sink: drains the spool to the write endpoint in batches. A batch leaves
//! the spool only on a 2xx; `post` says what each other answer means.
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outcome::{classify, retry_after, step, Misconfig, Step, WriteOutcome};
use super::SINK;
use crate::backoff::Backoff;
use crate::config::{InfluxAuth as Auth, InfluxSettings};
use crate::spool::Spool;

#[derive(Debug, Default)]
pub struct InfluxStats {
    pub written_lines: AtomicU64,
    /// Writes that failed and are retried: network, 429, 5xx.
    pub failed_requests: AtomicU64,
    /// Writes refused for the sink's setup, in the order of `Misconfig::ALL`.
    pub setup_failures: [AtomicU64; 4],
    pub dead_lettered_batches: AtomicU64,
    /// Dead-letter files removed to keep the folder within its bound.
    pub dead_letters_removed: AtomicU64,
    pub writes: AtomicU64,
    pub write_nanos: AtomicU64,
    /// While the server refuses writes for the sink's setup: why.
    failing: std::sync::Mutex<Option<String>>,
}

impl InfluxStats {
    /// Why the sink cannot write, while it cannot for its setup.
    pub fn failing(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_failing(&self, why: Option<String>) {
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }
}

/// How often a setup error that persists is logged again.
const SETUP_ERROR_REMINDER: Duration = Duration::from_secs(300);

/// Spooled records as one write: their sequence numbers, the lines, and the
/// lines compressed when `gzip` is on.
#[derive(Debug, Default)]
struct Batch {
    seqs: Vec<u64>,
    raw: Vec<u8>,
    gzipped: Option<Vec<u8>>,
    lines: u64,
}

impl Batch {
    /// Reads records from `from` until `max_lines` lines (records are whole
    /// events, so a batch may end a few lines over).
    fn read(
        spool: &Spool,
        from: u64,
        max_lines: usize,
        gzip: bool,
    ) -> Result<Batch, crate::spool::SpoolError> {
        let mut b = Batch::default();
        let mut at = from;
        'read: while (b.lines as usize) < max_lines {
            let chunk = spool.read(SINK, at, 256)?;
            if chunk.is_empty() {
                break;
            }
            for (seq, r) in chunk {
                at = seq + 1;
                b.lines += r.payload.iter().filter(|&&c| c == b'\n').count() as u64;
                b.raw.extend_from_slice(&r.payload);
                b.seqs.push(seq);
                if b.lines as usize >= max_lines {
                    break 'read;
                }
            }
        }
        if gzip && !b.raw.is_empty() {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(b.raw.len() / 4),
                flate2::Compression::fast(),
            );
            // Writing to a Vec cannot fail; if it ever did, send uncompressed.
            b.gzipped = enc.write_all(&b.raw).and_then(|_| enc.finish()).ok();
        }
        Ok(b)
    }
}

pub struct InfluxSink {
    settings: InfluxSettings,
    spool: Arc<Spool>,
    client: reqwest::Client,
    pub stats: Arc<InfluxStats>,
}

impl InfluxSink {
    pub fn new(settings: InfluxSettings, spool: Arc<Spool>) -> Result<Self, String> {
        crate::tls::install_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| format!("influxdb: cannot build the HTTP client: {e}"))?;
        Ok(InfluxSink {
            settings,
            spool,
            client,
            stats: Arc::default(),
        })
    }

    /// Drains the spool until `stop` fires, then makes one last attempt (2 s at most).
    /// Counts into `stats` (a sink restarted by a reload keeps its figures).
    pub fn with_stats(mut self, stats: Arc<InfluxStats>) -> Self {
        self.stats = stats;
        self
    }

    pub async fn run(self, stop: CancellationToken) {
        let notify = self.spool.notifier(SINK);
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut next = self.spool.stats(SINK).first_seq;
        // Lowered by 413 replies and kept low: the limit that refused it does not move.
        let mut batch_lines = self.settings.batch_lines;
        // While bad data is being isolated: the batch size to return to, and
        // the first sequence number past the batch that was refused.
        let mut isolating: Option<(usize, u64)> = None;
        let mut failing = false;
        let mut setup_logged: Option<(String, std::time::Instant)> = None;
        let mut stop_deadline: Option<std::time::Instant> = None;
        // The batch after the one in flight, read and compressed while the server
        // works: on two cores, doing the two in turn left each side idle half the time.
        let mut ready: Option<Batch> = None;
        // The previous batch's removal from the spool (a redb commit, an fsync)
        // runs while the next batch is written.
        let mut acking: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let stopping = stop.is_cancelled();
            // On the way out: whatever can be written in 2 s, the rest stays spooled.
            if stopping {
                let deadline = *stop_deadline
                    .get_or_insert_with(|| std::time::Instant::now() + Duration::from_secs(2));
                if std::time::Instant::now() >= deadline {
                    break;
                }
            }
            let batch = match ready.take() {
                Some(b) => b,
                None => {
                    let (spool, gzip) = (&self.spool, self.settings.gzip);
                    match tokio::task::block_in_place(|| {
                        Batch::read(spool, next, batch_lines, gzip)
                    }) {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!("{e}");
                            Batch::default()
                        }
                    }
                }
            };
            if batch.seqs.is_empty() {
                if stopping {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = notify.notified() => {
                        // Let a flush interval's worth gather: fewer, larger writes.
                        tokio::time::sleep(self.settings.flush_interval.min(Duration::from_secs(10))).await;
                    }
                }
                continue;
            }
            let after = batch.seqs.last().map_or(next, |s| s + 1);
            let prefetch = (!stopping).then(|| {
                let (spool, gzip) = (self.spool.clone(), self.settings.gzip);
                tokio::task::spawn_blocking(move || Batch::read(&spool, after, batch_lines, gzip))
            });
            let started = std::time::Instant::now();
            let outcome = if stopping {
                tokio::time::timeout(Duration::from_secs(2), self.post(&batch))
                    .await
                    .unwrap_or(WriteOutcome::Retry("shutting down".into(), None))
            } else {
                self.post(&batch).await
            };
            let prefetched = match prefetch {
                Some(h) => h.await.ok().and_then(Result::ok),
                None => None,
            };
            self.stats.writes.fetch_add(1, Relaxed);
            self.stats
                .write_nanos
                .fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
            let lines = batch.lines;
            match step(outcome, batch.seqs.len(), lines, &mut backoff) {
                Step::Ack => {
                    if failing {
                        tracing::info!("influxdb: writing again");
                        failing = false;
                        setup_logged = None;
                    }
                    // Also when a predecessor (before a reload) was the one failing.
                    self.stats.set_failing(None);
                    self.stats.written_lines.fetch_add(lines, Relaxed);
                    next = after;
                    self.ack(batch.seqs, &mut acking).await;
                    ready = prefetched.filter(|b| !b.seqs.is_empty());
                }
                Step::Shrink { lines: n, msg } => {
                    batch_lines = n;
                    tracing::warn!(
                        "influxdb: a batch of {lines} lines is too large ({msg}); writing at most {batch_lines} lines per batch from now on"
                    );
                }
                Step::Isolate { lines: n, msg } => {
                    let (full, _) = *isolating.get_or_insert((batch_lines, after));
                    batch_lines = n;
                    tracing::warn!(
                        "influxdb: a batch of {lines} lines holds bad data ({msg}); writing it in halves to set the bad records apart (then {full} lines a batch again)"
                    );
                }
                Step::DeadLetter(msg) => {
                    self.stats.dead_lettered_batches.fetch_add(1, Relaxed);
                    let dir = &self.settings.dead_letter_dir;
                    let file = super::dead_letter::write(
                        dir,
                        &self.settings.write_url,
                        &batch.raw,
                        &msg,
                        batch.seqs[0],
                    );
                    let removed =
                        super::dead_letter::prune(dir, self.settings.dead_letter_max_bytes);
                    if removed > 0 {
                        self.stats.dead_letters_removed.fetch_add(removed, Relaxed);
                        tracing::warn!(
                            "influxdb: removed the {removed} oldest dead-letter files to stay within influxdb.dead_letter_max_bytes"
                        );
                    }
                    tracing::error!("influxdb rejected {lines} lines as bad data: {msg}; moved to {file}, continuing with the next");
                    next = after;
                    self.ack(batch.seqs, &mut acking).await;
                    ready = prefetched.filter(|b| !b.seqs.is_empty());
                }
                Step::Retry { msg, delay, setup } => {
                    match setup {
                        None => self.stats.failed_requests.fetch_add(1, Relaxed),
                        Some(kind) => {
                            let i = Misconfig::ALL.iter().position(|k| *k == kind).unwrap_or(3);
                            self.stats.setup_failures[i].fetch_add(1, Relaxed)
                        }
                    };
                    if stopping {
                        break;
                    }
                    if setup.is_some() {
                        // An error, not a warning: nothing is written until someone
                        // fixes the configuration. Logged again every few minutes
                        // and whenever the server's answer changes.
                        self.stats.set_failing(Some(msg.clone()));
                        let due = setup_logged.as_ref().is_none_or(|(last, at)| {
                            *last != msg || at.elapsed() >= SETUP_ERROR_REMINDER
                        });
                        if due {
                            tracing::error!(
                                "influxdb at {}: {msg}; nothing is written, the data stays spooled and is retried (next in {:.1}s)",
                                self.settings.write_url.split('?').next().unwrap_or(""),
                                delay.as_secs_f64()
                            );
                            setup_logged = Some((msg, std::time::Instant::now()));
                        }
                        failing = true;
                    } else if !failing {
                        tracing::warn!(
                            "influxdb: {msg}; keeping the data and retrying (next in {:.1}s)",
                            delay.as_secs_f64()
                        );
                        failing = true;
                    }
                    // The same batch goes again, compressed already.
                    ready = Some(batch);
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
            // Past the refused batch: back to full batches.
            if let Some((full, until)) = isolating {
                if next >= until {
                    batch_lines = full;
                    isolating = None;
                }
            }
        }
        if let Some(h) = acking.take() {
            let _ = h.await;
        }
    }

    /// Removes a written batch from the spool in the background, after the
    /// previous removal has finished (so they commit in order). If a removal
    /// fails the batch stays spooled and is written again after a restart:
    /// at least once, never lost.
    async fn ack(&self, seqs: Vec<u64>, acking: &mut Option<tokio::task::JoinHandle<()>>) {
        if let Some(h) = acking.take() {
            let _ = h.await;
        }
        let spool = self.spool.clone();
        *acking = Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = spool.ack(SINK, &seqs) {
                tracing::error!("{e}");
            }
        }));
    }

    async fn post(&self, batch: &Batch) -> WriteOutcome {
        let s = &self.settings;
        let mut req = self
            .client
            .post(&s.write_url)
            .header("Content-Type", "text/plain; charset=utf-8");
        req = match &s.auth {
            Auth::Token(t) => req.header("Authorization", format!("Token {t}")),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
            Auth::None => req,
        };
        let req = match &batch.gzipped {
            Some(gz) => req.header("Content-Encoding", "gzip").body(gz.clone()),
            None => req.body(batch.raw.clone()),
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                // reqwest's own message is generic; the cause (connection refused, DNS...) is in its sources.
                let mut cause = String::new();
                let mut src = std::error::Error::source(&e);
                while let Some(c) = src {
                    cause = c.to_string();
                    src = c.source();
                }
                return WriteOutcome::Retry(
                    format!(
                        "{what} to {}: {cause}",
                        s.write_url.split('?').next().unwrap_or("")
                    ),
                    None,
                );
            }
        };
        let status = resp.status();
        if status.is_success() {
            return WriteOutcome::Written;
        }
        let retry_after = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, jiff::Timestamp::now()));
        let body = resp.text().await.unwrap_or_default();
        classify(status.as_u16(), &body, retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Influx;
    use crate::spool::Record;

    fn cfg(toml_text: &str) -> Influx {
        toml::from_str(toml_text).unwrap()
    }

    /// What the stand-in server saw: each request's arrival and its lines.
    type Seen = Arc<std::sync::Mutex<Vec<(std::time::Instant, Vec<String>)>>>;

    /// An in-process stand-in for a server that rate-limits once, then
    /// refuses bodies over 40 lines with 413 (as a proxy's body limit would).
    /// The real databases are exercised by tests/influx.rs; neither sends these.
    async fn limited_server(seen: Seen, got: tokio::sync::mpsc::UnboundedSender<()>) -> u16 {
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        let app = axum::Router::new().route(
            "/api/v2/write",
            axum::routing::post(move |body: String| {
                let seen = seen.clone();
                let got = got.clone();
                async move {
                    let lines: Vec<String> = body.lines().map(str::to_string).collect();
                    let mut s = seen.lock().unwrap();
                    let first = s.is_empty();
                    let n = lines.len();
                    s.push((std::time::Instant::now(), lines));
                    let _ = got.send(());
                    if first {
                        (
                            StatusCode::TOO_MANY_REQUESTS,
                            [("Retry-After", "1")],
                            "slow down",
                        )
                            .into_response()
                    } else if n > 40 {
                        (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response()
                    } else {
                        StatusCode::NO_CONTENT.into_response()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limits_and_body_limits_lose_nothing() {
        let seen: Seen = Arc::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let port = limited_server(seen.clone(), tx).await;
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(
            Spool::open(
                dir.path(),
                crate::spool::Limits {
                    max_bytes: 1 << 24,
                    max_age: Duration::from_secs(3600),
                },
            )
            .unwrap(),
        );
        let record = |i: usize, lines: usize| Record {
            at_ms: i as i64,
            key: String::new(),
            payload: (0..lines)
                .map(|k| format!("m r={i},k={k} {i}\n"))
                .collect::<String>()
                .into_bytes(),
        };
        // 100 one-line records, one record too large to write alone, one more after it.
        let mut batch: Vec<(&str, Record)> = (0..100).map(|i| (SINK, record(i, 1))).collect();
        batch.push((SINK, record(100, 60)));
        batch.push((SINK, record(101, 1)));
        spool.append(&batch).unwrap();
        let settings = crate::config::influx::check(
            &cfg(&format!("url = \"http://127.0.0.1:{port}\"\nbucket = \"b\"\ngzip = false\nbatch_size = 100\nflush_interval = \"10ms\""
            )),
            dir.path(),
            &mut |k, m| panic!("{k}: {m}"),
        )
        .unwrap();
        let sink = InfluxSink::new(settings, spool.clone()).unwrap();
        let stats = sink.stats.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(sink.run(stop.clone()));
        // Until the last record is in.
        loop {
            tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("the sink stopped writing")
                .unwrap();
            let s = seen.lock().unwrap();
            if s.last()
                .is_some_and(|(_, l)| l.iter().any(|l| l.starts_with("m r=101,")))
            {
                break;
            }
        }
        stop.cancel();
        task.await.unwrap();

        let s = seen.lock().unwrap();
        assert!(
            s[1].0 - s[0].0 >= Duration::from_millis(950),
            "the retry came {:?} after a Retry-After of 1 s",
            s[1].0 - s[0].0
        );
        // The 413s halved the batch 100 -> 50 -> 25 lines; the 60-line record was dead-lettered alone.
        let sizes: Vec<usize> = s.iter().map(|(_, l)| l.len()).collect();
        assert_eq!(&sizes[..4], &[100, 100, 50, 25], "{sizes:?}");
        let written: Vec<String> = s
            .iter()
            .filter(|(_, l)| l.len() <= 40)
            .flat_map(|(_, l)| l.iter().cloned())
            .collect();
        let expected: Vec<String> = (0..100)
            .chain([101])
            .map(|i| format!("m r={i},k=0 {i}"))
            .collect();
        assert_eq!(written, expected, "every line once, in order");
        assert_eq!(stats.dead_lettered_batches.load(Relaxed), 1);
        let dead: Vec<_> = std::fs::read_dir(dir.path().join("influxdb-dead-letter"))
            .unwrap()
            .collect();
        assert_eq!(dead.len(), 1);
        let text = std::fs::read_to_string(dead[0].as_ref().unwrap().path()).unwrap();
        assert!(
            text.contains("413") && text.contains("m r=100,k=59 100"),
            "{text}"
        );
        assert_eq!(spool.stats(SINK).count, 0, "the spool is drained");
    }
}
