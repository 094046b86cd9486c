//! What one poll of one device yields: acquisition's only output.
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::decode::Value;
use super::profile::{Profile, Role};

/// Identity of a polled device, shared by all its samples.
#[derive(Debug)]
pub struct DeviceRef {
    pub site: Arc<str>,
    pub device: Arc<str>,
    pub unit: u8,
    pub profile: Arc<Profile>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PointReading {
    /// Index into the profile's points.
    pub point: usize,
    pub value: Value,
    /// The unsigned register pattern, so counters can tell a wrap from a reset.
    pub raw: u64,
    /// False when outside the point's `valid` range: reported, never used for energy.
    pub valid: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Timeout,
    Exception,
    Transport,
    Decode,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Exception => "exception",
            ErrorKind::Transport => "transport",
            ErrorKind::Decode => "decode",
        }
    }
}

/// One failed request, with everything an operator needs to find it on site.
#[derive(Debug, Clone, PartialEq)]
pub struct PollError {
    pub kind: ErrorKind,
    pub site: Arc<str>,
    pub device: Arc<str>,
    pub unit: u8,
    pub function: u8,
    pub address: u16,
    pub count: u16,
    pub message: String,
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "site {} device {} unit {} function {:#04x} address {:#06x} count {}: {} ({})",
            self.site,
            self.device,
            self.unit,
            self.function,
            self.address,
            self.count,
            self.message,
            self.kind.as_str()
        )
    }
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub device: Arc<DeviceRef>,
    /// When the poll started, read from the daemon's clock.
    pub at: Timestamp,
    pub readings: Vec<PointReading>,
    /// Points the device reported as not available (sentinel, NaN) or whose request failed.
    pub missing: Vec<usize>,
    pub poll_duration: Duration,
    pub errors: Vec<PollError>,
    /// Requests sent in this poll.
    pub requests: u16,
    /// Scheduled polls skipped since the previous sample because a poll overran.
    pub missed: u32,
    /// This device's poll number since the daemon started (1, 2, ...): a consumer
    /// that sees a gap in it knows a message went missing.
    pub seq: u64,
    /// True when at least one request was answered with data.
    pub online: bool,
}

impl Sample {
    pub fn site(&self) -> &str {
        &self.device.site
    }

    pub fn name_of(&self, r: &PointReading) -> &str {
        &self.device.profile.points[r.point].name
    }

    pub fn value(&self, name: &str) -> Option<&Value> {
        let (i, _) = self.device.profile.point(name)?;
        self.readings
            .iter()
            .find(|r| r.point == i)
            .map(|r| &r.value)
    }

    /// The reading of the point carrying `role`, if present and valid.
    pub fn role(&self, role: Role) -> Option<&PointReading> {
        let (i, _) = self.device.profile.point_with_role(role)?;
        self.readings.iter().find(|r| r.point == i && r.valid)
    }

    pub fn invalid(&self) -> impl Iterator<Item = &str> {
        self.readings
            .iter()
            .filter(|r| !r.valid)
            .map(|r| self.name_of(r))
    }
}
