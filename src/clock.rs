//! The one place the daemon reads wall-clock time from.
//!
//! Pollers schedule on the monotonic clock, but every timestamp that leaves
//! acquisition (and every physics step of the simulator) comes from a [`Clock`],
//! so `demo --speed N` and tests can run simulated days without waiting for them.
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Simulated time that runs `speed` times faster than real time from an anchor.
#[derive(Debug)]
pub struct ScaledClock {
    real_anchor: Instant,
    anchor: Timestamp,
    speed: f64,
}

impl ScaledClock {
    pub fn new(anchor: Timestamp, speed: f64) -> Self {
        Self {
            real_anchor: Instant::now(),
            anchor,
            speed,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let real = self.real_anchor.elapsed().as_secs_f64();
        let nanos = (real * self.speed * 1e9) as i64;
        self.anchor
            .checked_add(SignedDuration::from_nanos(nanos))
            .unwrap_or(self.anchor)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = t.checked_add(by).unwrap_or(*t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
