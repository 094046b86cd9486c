//! One task per transport (a TCP connection or a serial bus): it owns the
//! connection, serves one request at a time in the order its devices' schedules
//! ask, and hands each device's sample on.
//!
//! Isolation rules, from the field: a device that stops answering backs off on
//! its own schedule while its neighbours keep theirs; after a timeout or a
//! garbled reply the connection is dropped (a late reply must never be read as
//! the answer to the next request) and reopened with backoff if opening fails.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_modbus::client::{Client, Context};
use tokio_util::sync::CancellationToken;

use super::decode::{decode_reply, Decoded};
use super::sample::{DeviceRef, ErrorKind, PointReading, PollError, Sample};
use super::transport::{self, exception_text, CallError};
use crate::acquire::spec::DeviceSpec;
use crate::acquire::spec::Transport;
use crate::backoff::Backoff;
use crate::clock::SharedClock;

/// A device that keeps failing is polled at most this rarely.
const MAX_DEVICE_BACKOFF: Duration = Duration::from_secs(60);

struct Slot {
    dev: Arc<DeviceRef>,
    spec: Arc<DeviceSpec>,
    /// `Conn::broken` when `dev.profile` was resolved against the device's
    /// SunSpec chain: after another break the device may have restarted with
    /// new firmware and its models moved. (Not every new connection: with
    /// `close_after_poll` each poll opens one.)
    sunspec_at: Option<u64>,
    next_due: Instant,
    polls: u64,
    failures: u32,
    missed: u32,
}

pub struct Link {
    pub key: String,
    transport: Transport,
    pause: Duration,
    close_after_poll: bool,
    connect_timeout: Duration,
    slots: Vec<Slot>,
}

/// The first tick of a schedule aligned to multiples of `interval` in wall-clock time,
/// so polls land on :00, :01, ... and do not drift.
pub fn first_aligned_tick(interval: Duration) -> Instant {
    let now_wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let iv = interval.as_nanos().max(1);
    let rem = now_wall.as_nanos() % iv;
    Instant::now() + Duration::from_nanos((iv - rem) as u64)
}

impl Link {
    pub fn new(devices: Vec<Arc<DeviceSpec>>) -> Link {
        let transport = devices[0].transport.clone();
        let key = transport.key();
        let close_after_poll = match &transport {
            Transport::Tcp {
                close_after_poll, ..
            }
            | Transport::RtuOverTcp {
                close_after_poll, ..
            } => *close_after_poll,
            Transport::Rtu { .. } => false,
        };
        let transport_pause = devices[0].pause;
        let profile_pause = devices
            .iter()
            .map(|d| d.profile.pause_between_requests)
            .max()
            .unwrap_or_default();
        let connect_timeout = devices
            .iter()
            .map(|d| d.timeout)
            .max()
            .unwrap_or_default()
            .max(Duration::from_secs(1))
            * 2;
        let slots = devices
            .into_iter()
            .map(|spec| Slot {
                dev: Arc::new(DeviceRef {
                    site: spec.site.clone(),
                    device: spec.id.clone(),
                    unit: spec.unit,
                    profile: spec.profile.clone(),
                }),
                next_due: first_aligned_tick(spec.poll_interval),
                spec,
                sunspec_at: None,
                polls: 0,
                failures: 0,
                missed: 0,
            })
            .collect();
        Link {
            key,
            transport,
            pause: transport_pause.max(profile_pause),
            close_after_poll,
            connect_timeout,
            slots,
        }
    }

    pub async fn run(
        mut self,
        clock: SharedClock,
        tx: mpsc::Sender<Sample>,
        cancel: CancellationToken,
    ) {
        let mut conn = Conn {
            ctx: None,
            broken: 0,
            reconnect_at: None,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(30)),
            last_request: None,
        };
        loop {
            let Some(i) = (0..self.slots.len()).min_by_key(|&i| self.slots[i].next_due) else {
                return;
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = sleep_until(self.slots[i].next_due) => {}
            }
            let sample = self.poll(i, &mut conn, &clock).await;
            if tx.send(sample).await.is_err() {
                break;
            }
            if self.close_after_poll {
                let next = self.slots.iter().map(|s| s.next_due).min();
                if next.is_some_and(|n| n > Instant::now()) {
                    conn.drop_connection().await;
                }
            }
        }
        conn.drop_connection().await;
    }

    async fn poll(&mut self, i: usize, conn: &mut Conn, clock: &SharedClock) -> Sample {
        let started = Instant::now();
        let at = clock.now();
        let slot = &mut self.slots[i];
        let spec = slot.spec.clone();
        let with_slow = slot.polls % spec.slow_every as u64 == 0;
        let mut missing = Vec::new();
        let mut errors = Vec::new();
        let mut answered = 0u32;
        let mut unreachable = false;
        let mut requests = 0u16;
        let mut aborted = false;
        if spec.profile.sunspec && slot.sunspec_at != Some(conn.broken) {
            if let Err(e) = self.resolve_sunspec(i, conn).await {
                errors.push(e);
                unreachable = true;
                aborted = true;
            }
        }
        let profile = self.slots[i].dev.profile.clone();
        let mut readings = Vec::with_capacity(profile.points.len());
        for req in profile.plan.requests(with_slow) {
            if aborted {
                missing.extend(req.points.iter().copied());
                continue;
            }
            let err = |kind: ErrorKind, message: String| PollError {
                kind,
                site: spec.site.clone(),
                device: spec.id.clone(),
                unit: spec.unit,
                function: req.table.function_code(),
                address: req.start,
                count: req.count,
                message,
            };
            if let Some(last) = conn.last_request {
                if !self.pause.is_zero() {
                    sleep_until(last + self.pause).await;
                }
            }
            let ctx = match conn.ensure(&self.transport, self.connect_timeout).await {
                Ok(ctx) => ctx,
                Err(message) => {
                    errors.push(err(
                        ErrorKind::Transport,
                        format!("{}: {message}", self.key),
                    ));
                    missing.extend(req.points.iter().copied());
                    unreachable = true;
                    aborted = true;
                    continue;
                }
            };
            requests += 1;
            let result = transport::read(ctx, spec.unit, req, spec.timeout).await;
            conn.last_request = Some(Instant::now());
            match result {
                Ok(reply) => {
                    answered += 1;
                    decode_reply(&profile, req, &reply, |point, d| match d {
                        Decoded::Value { value, raw, valid } => readings.push(PointReading {
                            point,
                            value,
                            raw,
                            valid,
                        }),
                        Decoded::Missing => missing.push(point),
                    });
                }
                Err(e) => {
                    missing.extend(req.points.iter().copied());
                    let (kind, message) = match &e {
                        CallError::Timeout => (
                            ErrorKind::Timeout,
                            format!("no reply within {:?}", spec.timeout),
                        ),
                        CallError::Exception(code) => (ErrorKind::Exception, exception_text(*code)),
                        CallError::Transport(m) => (ErrorKind::Transport, m.clone()),
                    };
                    let gateway_gave_up = matches!(
                        e,
                        CallError::Exception(tokio_modbus::ExceptionCode::GatewayTargetDevice)
                            | CallError::Exception(
                                tokio_modbus::ExceptionCode::GatewayPathUnavailable
                            )
                    );
                    if e.drops_connection() {
                        conn.drop_broken().await;
                    }
                    errors.push(err(kind, message));
                    if e.drops_connection() || gateway_gave_up {
                        // The device is not answering: do not spend more timeouts on it this round.
                        unreachable = true;
                        aborted = true;
                    }
                }
            }
        }
        for e in &errors {
            tracing::debug!(target: "bessmon::acquire", "{e}");
        }
        let failed = answered == 0 && unreachable;
        let slot = &mut self.slots[i];
        slot.polls += 1;
        let missed = std::mem::take(&mut slot.missed);
        reschedule(slot, failed);
        missing.sort_unstable();
        missing.dedup();
        Sample {
            device: slot.dev.clone(),
            at,
            readings,
            missing,
            poll_duration: started.elapsed(),
            errors,
            requests,
            missed,
            seq: slot.polls,
            online: answered > 0,
        }
    }

    /// Reads the device's SunSpec chain on this connection and moves the
    /// profile's points to where the chain puts their models.
    async fn resolve_sunspec(&mut self, i: usize, conn: &mut Conn) -> Result<(), PollError> {
        let spec = self.slots[i].spec.clone();
        let fail = |kind: ErrorKind, message: String| PollError {
            kind,
            site: spec.site.clone(),
            device: spec.id.clone(),
            unit: spec.unit,
            function: 3,
            address: super::sunspec::chain::BASES[0],
            count: 2,
            message,
        };
        let ctx = conn
            .ensure(&self.transport, self.connect_timeout)
            .await
            .map_err(|m| fail(ErrorKind::Transport, format!("{}: {m}", self.key)))?;
        let mut dev = super::sunspec::OverModbus {
            ctx,
            unit: spec.unit,
            timeout: spec.timeout,
            must_drop: false,
        };
        let walked = super::sunspec::walk(&mut dev).await;
        let must_drop = dev.must_drop;
        conn.last_request = Some(Instant::now());
        if must_drop {
            conn.drop_broken().await;
        }
        let chain = walked.map_err(|m| fail(ErrorKind::Decode, format!("SunSpec: {m}")))?;
        let slot = &mut self.slots[i];
        match super::sunspec::resolve(&spec.profile, &chain) {
            Ok(moved) => {
                if moved.is_some() {
                    tracing::info!(
                        target: "bessmon::acquire",
                        "site {} device {}: SunSpec models {} at base {}; points moved to the device's addresses",
                        spec.site, spec.id, chain.ids(), chain.base
                    );
                }
                let profile = moved.map(Arc::new).unwrap_or_else(|| spec.profile.clone());
                if !Arc::ptr_eq(&slot.dev.profile, &profile) {
                    slot.dev = Arc::new(DeviceRef {
                        site: spec.site.clone(),
                        device: spec.id.clone(),
                        unit: spec.unit,
                        profile,
                    });
                }
                slot.sunspec_at = Some(conn.broken);
                Ok(())
            }
            Err(m) => Err(fail(ErrorKind::Decode, format!("SunSpec: {m}"))),
        }
    }
}

fn reschedule(slot: &mut Slot, failed: bool) {
    if failed {
        slot.failures = slot.failures.saturating_add(1);
    } else {
        slot.failures = 0;
    }
    let (next, missed) = next_due(
        slot.next_due,
        Instant::now(),
        slot.spec.poll_interval,
        slot.failures,
    );
    slot.missed = slot.missed.saturating_add(missed);
    slot.next_due = next;
}

/// The next tick after a poll that was due at `due`, and the ticks it overran.
///
/// With `failures` consecutive failed polls the device waits 2^(failures-1)
/// intervals (at most [`MAX_DEVICE_BACKOFF`]); skipped backoff ticks are not
/// "missed". Ticks stay on the original grid, so the schedule never drifts.
pub fn next_due(due: Instant, now: Instant, interval: Duration, failures: u32) -> (Instant, u32) {
    let iv = interval.as_nanos().max(1);
    let mut next = due + interval;
    if failures > 0 {
        let cap = (MAX_DEVICE_BACKOFF.as_nanos() / iv).max(1) as u64;
        let ticks = (1u64 << (failures - 1).min(16)).min(cap);
        next += interval * (ticks - 1) as u32;
    }
    let mut missed = 0;
    if next <= now {
        // The poll overran: skip the ticks already past instead of queueing them up.
        let behind = ((now - next).as_nanos() / iv + 1) as u32;
        if failures == 0 {
            missed = behind;
        }
        next += interval * behind;
    }
    (next, missed)
}

struct Conn {
    ctx: Option<Context>,
    /// Connections lost to an error, or refused, so far.
    broken: u64,
    reconnect_at: Option<Instant>,
    backoff: Backoff,
    last_request: Option<Instant>,
}

impl Conn {
    async fn ensure(&mut self, t: &Transport, timeout: Duration) -> Result<&mut Context, String> {
        if self.ctx.is_none() {
            if let Some(at) = self.reconnect_at {
                if Instant::now() < at {
                    return Err(format!(
                        "connection down, next attempt in {:.1}s",
                        (at - Instant::now()).as_secs_f64()
                    ));
                }
            }
            match transport::connect(t, timeout).await {
                Ok(ctx) => {
                    self.ctx = Some(ctx);
                    self.reconnect_at = None;
                    if self.backoff.attempts() > 0 {
                        tracing::info!(target: "bessmon::acquire", "{}: connected again", t.key());
                    }
                    self.backoff.reset();
                    self.last_request = None;
                }
                Err(e) => {
                    self.broken += 1;
                    let delay = self.backoff.next_delay();
                    self.reconnect_at = Some(Instant::now() + delay);
                    let msg = format!(
                        "cannot connect: {e}; retrying in {:.1}s",
                        delay.as_secs_f64()
                    );
                    if self.backoff.attempts() == 1 {
                        tracing::warn!(target: "bessmon::acquire", "{}: {msg}", t.key());
                    }
                    return Err(msg);
                }
            }
        }
        Ok(self.ctx.as_mut().expect("connected above"))
    }

    /// Drops a connection that failed (a timeout, a garbled reply).
    async fn drop_broken(&mut self) {
        self.broken += 1;
        self.drop_connection().await;
    }

    async fn drop_connection(&mut self) {
        if let Some(mut ctx) = self.ctx.take() {
            let _ = tokio::time::timeout(Duration::from_millis(100), ctx.disconnect()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn on_time_polls_keep_the_grid() {
        let t0 = Instant::now();
        let (n, m) = next_due(t0, t0 + Duration::from_millis(30), S, 0);
        assert_eq!((n, m), (t0 + S, 0));
    }

    #[test]
    fn an_overrun_counts_skipped_ticks_and_stays_on_the_grid() {
        let t0 = Instant::now();
        // Due at t0, finished 2.5 s later: ticks t0+1 and t0+2 were missed.
        let (n, m) = next_due(t0, t0 + Duration::from_millis(2500), S, 0);
        assert_eq!((n, m), (t0 + 3 * S, 2));
    }

    #[test]
    fn failing_devices_back_off_exponentially_up_to_a_minute() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_millis(10);
        assert_eq!(next_due(t0, now, S, 1).0, t0 + S);
        assert_eq!(next_due(t0, now, S, 2).0, t0 + 2 * S);
        assert_eq!(next_due(t0, now, S, 4).0, t0 + 8 * S);
        assert_eq!(next_due(t0, now, S, 30).0, t0 + 60 * S);
        // Backoff is not a missed poll.
        assert_eq!(next_due(t0, t0 + 5 * S, S, 3).1, 0);
    }
}
