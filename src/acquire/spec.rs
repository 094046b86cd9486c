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

#[derive(Debug, Clone, PartialEq)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(text: &str) -> Transport {
        #[derive(Deserialize)]
        struct T {
            t: Transport,
        }
        toml::from_str::<T>(&format!("t = {text}")).unwrap().t
    }

    #[test]
    fn devices_behind_one_address_share_a_connection_key() {
        assert_eq!(
            transport("{ type = \"tcp\", host = \"10.0.0.5\" }").key(),
            "tcp://10.0.0.5:502"
        );
        assert_eq!(
            transport("{ type = \"rtu-over-tcp\", host = \"gw\", port = 4196 }").key(),
            "rtu-over-tcp://gw:4196"
        );
        let rtu = transport("{ type = \"rtu\", path = \"/dev/ttyUSB0\" }");
        assert_eq!(rtu.key(), "rtu:///dev/ttyUSB0");
        let Transport::Rtu {
            baud,
            parity,
            stop_bits,
            data_bits,
            ..
        } = rtu
        else {
            panic!()
        };
        assert_eq!(
            (baud, parity, stop_bits, data_bits),
            (9600, Parity::None, 1, 8)
        );
    }

    #[test]
    fn parity_is_one_of_three_names() {
        assert_eq!(Parity::parse("even"), Some(Parity::Even));
        assert_eq!(Parity::parse("odd"), Some(Parity::Odd));
        assert_eq!(Parity::parse("mark"), None);
        let e = toml::from_str::<toml::Table>(
            "t = { type = \"rtu\", path = \"p\", parity = \"mark\" }",
        )
        .map(|t| t["t"].clone().try_into::<Transport>())
        .unwrap()
        .unwrap_err();
        assert!(e.to_string().contains("mark"), "{e}");
    }
}
