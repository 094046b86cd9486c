//! Where the broker is and how to reach it: URL, TLS (CA, client
//! certificate), credentials from the config or a file, QoS, session options.
use std::path::{Path, PathBuf};
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};

use super::WINDOW;
use crate::config::Mqtt;

#[derive(Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsConfiguration>,
    pub prefix: String,
    pub instance: String,
    pub username: Option<String>,
    password: Option<String>,
    pub qos: QoS,
    pub homeassistant: Option<String>,
    pub state_dir: PathBuf,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never printed.
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("prefix", &self.prefix)
            .field("instance", &self.instance)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("mqtt.{key}: cannot read {}: {e}", path.display()))
}

/// Splits `mqtt://host:port` / `mqtts://[::1]:8883` into (tls, host, port).
pub fn parse_url(url: &str) -> Result<(bool, String, u16), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(format!(
            "mqtt.url: `{url}` must start with mqtt:// or mqtts://"
        ));
    };
    let rest = rest.trim_end_matches('/');
    let default = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| format!("mqtt.url: `{url}`: unclosed ["))?;
        (h.to_string(), after.strip_prefix(':').map(str::to_string))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (rest.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("mqtt.url: `{url}`: `{p}` is not a port"))?,
        None => default,
    };
    if host.is_empty() {
        return Err(format!("mqtt.url: `{url}` has no host"));
    }
    Ok((tls, host, port))
}

impl MqttSettings {
    pub fn from_config(m: &Mqtt, instance: &str, state_dir: &Path) -> Result<MqttSettings, String> {
        let (tls, host, port) = parse_url(&m.url)?;
        let password = match (&m.password, &m.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => {
                let p = String::from_utf8(read(f, "password_file")?)
                    .map_err(|_| format!("mqtt.password_file: {} is not UTF-8", f.display()))?;
                Some(p.trim_end_matches(['\n', '\r']).to_string())
            }
            (None, None) => None,
        };
        let tls = if tls {
            crate::tls::install_provider();
            let client_auth = match (&m.client_cert_file, &m.client_key_file) {
                (Some(c), Some(k)) => {
                    Some((read(c, "client_cert_file")?, read(k, "client_key_file")?))
                }
                (None, None) => None,
                _ => {
                    return Err("mqtt.client_cert_file and mqtt.client_key_file go together".into())
                }
            };
            Some(match &m.ca_file {
                Some(ca) => TlsConfiguration::Simple {
                    ca: read(ca, "ca_file")?,
                    alpn: None,
                    client_auth,
                },
                None if client_auth.is_none() => TlsConfiguration::default(),
                None => return Err("mqtt.client_cert_file needs mqtt.ca_file".into()),
            })
        } else {
            None
        };
        Ok(MqttSettings {
            host,
            port,
            tls,
            prefix: m.topic_prefix.clone(),
            instance: instance.to_string(),
            username: m.username.clone(),
            password,
            qos: match m.qos {
                0 => QoS::AtMostOnce,
                2 => QoS::ExactlyOnce,
                _ => QoS::AtLeastOnce,
            },
            homeassistant: m
                .homeassistant
                .as_ref()
                .filter(|h| h.enabled)
                .map(|h| h.discovery_prefix.clone()),
            state_dir: state_dir.to_path_buf(),
        })
    }

    pub fn status_topic(&self) -> String {
        format!("{}/{}/status", self.prefix, self.instance)
    }

    pub(super) fn options(&self) -> MqttOptions {
        let mut o = MqttOptions::new(self.instance.clone(), self.host.clone(), self.port);
        o.set_clean_session(false);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_inflight(WINDOW as u16);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o.set_last_will(LastWill::new(
            self.status_topic(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(u) = &self.username {
            o.set_credentials(u.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(t) = &self.tls {
            o.set_transport(Transport::tls_with_config(t.clone()));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            (false, "127.0.0.1".into(), 1883)
        );
        assert_eq!(
            parse_url("mqtts://broker.example").unwrap(),
            (true, "broker.example".into(), 8883)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1884").unwrap(),
            (false, "::1".into(), 1884)
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("mqtt://x:notaport").is_err());
    }
}
