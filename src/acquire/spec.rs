//! What acquisition is told about a device: how to reach it (the transport, as
//! the config file writes it) and what to read (its profile), with its timing
//! already validated. Config builds these; acquisition never reads config.
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::profile::Profile;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Transport {
    Tcp {
        host: String,
        #[serde(default = "default_port")]
        port: u16,
        #[serde(default)]
        close_after_poll: bool,
        /// Extra gap between requests on this connection (gateways that need pacing).
        #[serde(default)]
        pause: Option<String>,
    },
    RtuOverTcp {
        host: String,
        #[serde(default = "default_port")]
        port: u16,
        #[serde(default)]
        close_after_poll: bool,
        #[serde(default)]
        pause: Option<String>,
    },
    Rtu {
        path: String,
        #[serde(default = "default_baud")]
        baud: u32,
        #[serde(default)]
        parity: Parity,
        #[serde(default = "default_stop_bits")]
        stop_bits: u8,
        #[serde(default = "default_data_bits")]
        data_bits: u8,
        #[serde(default)]
        pause: Option<String>,
    },
}

/// A serial line's parity bit, as the config file names it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

impl Parity {
    /// The name the config file and `bessmon read --parity` use.
    pub fn parse(s: &str) -> Option<Parity> {
        match s {
            "none" => Some(Parity::None),
            "even" => Some(Parity::Even),
            "odd" => Some(Parity::Odd),
            _ => None,
        }
    }
}

fn default_port() -> u16 {
    502
}
fn default_baud() -> u32 {
    9600
}
fn default_stop_bits() -> u8 {
    1
}
fn default_data_bits() -> u8 {
    8
}

impl Transport {
    /// Devices whose transports have the same key share one connection.
    pub fn key(&self) -> String {
        match self {
            Transport::Tcp { host, port, .. } => format!("tcp://{host}:{port}"),
            Transport::RtuOverTcp { host, port, .. } => format!("rtu-over-tcp://{host}:{port}"),
            Transport::Rtu { path, .. } => format!("rtu://{path}"),
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct DeviceSpec {
    pub site: Arc<str>,
    pub id: Arc<str>,
    pub unit: u8,
    pub profile: Arc<Profile>,
    pub transport: Transport,
    /// The transport's pause between requests, parsed (zero without one).
    pub pause: Duration,
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub slow_every: u32,
}
