//! `[mqtt]` checked and resolved: the broker's address from the URL, the
//! password and certificates read from their files now (not at the first
//! connect), QoS as a level, every duration parsed. The sink receives this and
//! never looks at the file's strings.
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::validate::id_problem;
use super::Mqtt;
use crate::duration::parse_duration;

/// MQTT delivery guarantee for telemetry and savings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
}

/// TLS material, read from the configured files.
#[derive(Clone, PartialEq)]
pub struct MqttTls {
    /// PEM; without it the platform's web roots are trusted.
    pub ca: Option<Vec<u8>>,
    /// PEM certificate and key for client authentication.
    pub client_auth: Option<(Vec<u8>, Vec<u8>)>,
}

#[derive(Clone, PartialEq)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub tls: Option<MqttTls>,
    pub prefix: String,
    /// The stable client id, `daemon.instance`.
    pub instance: String,
    pub username: Option<String>,
    password: Option<String>,
    pub qos: Qos,
    /// Home Assistant's discovery prefix, when discovery is on.
    pub homeassistant: Option<String>,
    /// How often each site's savings go out (`mqtt.savings_interval`).
    pub savings_interval: Duration,
    /// Where the retained-topic registry is kept.
    pub state_dir: PathBuf,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the password nor the key material is ever printed.
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("prefix", &self.prefix)
            .field("instance", &self.instance)
            .field("username", &self.username)
            .field("qos", &self.qos)
            .finish_non_exhaustive()
    }
}

impl MqttSettings {
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn status_topic(&self) -> String {
        format!("{}/{}/status", self.prefix, self.instance)
    }
}

/// Splits `mqtt://host:port` / `mqtts://[::1]:8883` into (tls, host, port).
pub fn parse_url(url: &str) -> Result<(bool, String, u16), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(format!("`{url}` must start with mqtt:// or mqtts://"));
    };
    let rest = rest.trim_end_matches('/');
    let default = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| format!("`{url}`: unclosed ["))?;
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
            .map_err(|_| format!("`{url}`: `{p}` is not a port"))?,
        None => default,
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    Ok((tls, host, port))
}

/// Reads a secret or certificate file, reporting a failure under `mqtt.{key}`.
fn read(path: &Path, key: &str, e: &mut impl FnMut(String, String)) -> Option<Vec<u8>> {
    super::secret::read(path)
        .map_err(|err| e(format!("mqtt.{key}"), err))
        .ok()
}

/// Checks `[mqtt]`, reporting every problem through `e`; the settings when
/// there was none.
pub fn check(
    m: &Mqtt,
    instance: &str,
    state_dir: &Path,
    e: &mut impl FnMut(String, String),
) -> Option<MqttSettings> {
    let mut ok = true;
    let mut bad = |e: &mut dyn FnMut(String, String), key: &str, msg: String| {
        ok = false;
        e(key.into(), msg);
    };
    let url = parse_url(&m.url)
        .map_err(|msg| bad(e, "mqtt.url", msg))
        .ok();
    let qos = match m.qos {
        0 => Qos::AtMostOnce,
        1 => Qos::AtLeastOnce,
        2 => Qos::ExactlyOnce,
        n => {
            bad(e, "mqtt.qos", format!("{n} is not 0, 1 or 2"));
            Qos::AtLeastOnce
        }
    };
    if m.password.is_some() && m.password_file.is_some() {
        bad(
            e,
            "mqtt.password_file",
            "give either password (environment) or password_file, not both".into(),
        );
    }
    if let Some(p) = id_problem(&m.topic_prefix) {
        bad(e, "mqtt.topic_prefix", p);
    }
    let savings_interval = parse_duration(&m.savings_interval)
        .map_err(|msg| bad(e, "mqtt.savings_interval", msg))
        .ok();
    if (m.password.is_some() || m.password_file.is_some()) && m.username.is_none() {
        bad(e, "mqtt.username", "a password needs a username".into());
    }
    // Secrets and certificates are read now, so a missing file stops the
    // start, not the first connect; their contents are never printed.
    let mut file = |key: &str, path: &Option<PathBuf>| {
        let path = path.as_deref().filter(|p| !super::secret::unverifiable(p));
        path.map(|p| match read(p, key, e) {
            Some(bytes) => Some(bytes),
            None => {
                ok = false;
                None
            }
        })
    };
    let password_bytes = file("password_file", &m.password_file);
    let ca = file("ca_file", &m.ca_file);
    let cert = file("client_cert_file", &m.client_cert_file);
    let key = file("client_key_file", &m.client_key_file);
    let password = match (&m.password, password_bytes) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(Some(bytes))) => match String::from_utf8(bytes) {
            Ok(p) => Some(p.trim_end_matches(['\n', '\r']).to_string()),
            Err(_) => {
                ok = false;
                e(
                    "mqtt.password_file".into(),
                    format!("{} is not UTF-8", m.password_file.as_ref()?.display()),
                );
                None
            }
        },
        _ => None,
    };
    let client_auth = match (cert, key) {
        (Some(Some(c)), Some(Some(k))) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            ok = false;
            e(
                "mqtt.client_key_file".into(),
                "client_cert_file and client_key_file go together".into(),
            );
            None
        }
        _ => None, // unreadable, already reported
    };
    let homeassistant = match &m.homeassistant {
        Some(h) => {
            if let Some(p) = id_problem(&h.discovery_prefix) {
                ok = false;
                e("mqtt.homeassistant.discovery_prefix".into(), p);
            }
            h.enabled.then(|| h.discovery_prefix.clone())
        }
        None => None,
    };
    let (tls, host, port) = url?;
    let tls = if tls {
        let ca = match ca {
            Some(Some(ca)) => Some(ca),
            Some(None) => return None,
            None if client_auth.is_some() => {
                e(
                    "mqtt.ca_file".into(),
                    "client_cert_file needs ca_file (the broker's CA)".into(),
                );
                return None;
            }
            None => None,
        };
        Some(MqttTls { ca, client_auth })
    } else {
        None
    };
    if !ok {
        return None;
    }
    Some(MqttSettings {
        host,
        port,
        tls,
        prefix: m.topic_prefix.clone(),
        instance: instance.to_string(),
        username: m.username.clone(),
        password,
        qos,
        homeassistant,
        savings_interval: savings_interval?,
        state_dir: state_dir.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(toml_text: &str) -> Result<MqttSettings, Vec<String>> {
        let m: Mqtt = toml::from_str(toml_text).unwrap();
        let mut errs = Vec::new();
        let s = check(&m, "inst", Path::new("/state"), &mut |k, msg| {
            errs.push(format!("{k}: {msg}"))
        });
        match s {
            Some(s) if errs.is_empty() => Ok(s),
            _ => Err(errs),
        }
    }

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

    #[test]
    fn the_password_file_is_read_at_validation_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let s = checked(&format!(
            "url = \"mqtt://b:1884\"\nusername = \"u\"\npassword_file = \"{}\"\nqos = 2\nsavings_interval = \"30s\"",
            f.display()
        ))
        .unwrap();
        assert_eq!(s.password(), Some("s3cret"), "the trailing newline goes");
        assert_eq!((s.host.as_str(), s.port), ("b", 1884));
        assert_eq!(s.qos, Qos::ExactlyOnce);
        assert_eq!(s.savings_interval, Duration::from_secs(30));
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let errs = checked(
            "url = \"tcp://b\"\nqos = 3\npassword = \"p\"\nsavings_interval = \"often\"\nclient_cert_file = \"/nonexistent/c\"",
        )
        .unwrap_err();
        for key in [
            "mqtt.url",
            "mqtt.qos",
            "mqtt.savings_interval",
            "mqtt.username",
            "mqtt.client_cert_file",
            "mqtt.client_key_file",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(key)),
                "{key} missing from {errs:#?}"
            );
        }
    }

    #[test]
    fn a_client_certificate_needs_the_brokers_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, "cert").unwrap();
        std::fs::write(&k, "key").unwrap();
        let base = format!(
            "url = \"mqtts://b\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            c.display(),
            k.display()
        );
        let errs = checked(&base).unwrap_err();
        assert!(errs[0].starts_with("mqtt.ca_file"), "{errs:?}");
        let s = checked(&format!("{base}ca_file = \"{}\"", c.display())).unwrap();
        let tls = s.tls.unwrap();
        assert_eq!(tls.ca.as_deref(), Some(&b"cert"[..]));
        assert_eq!(tls.client_auth, Some((b"cert".to_vec(), b"key".to_vec())));
        assert_eq!(s.port, 8883);
    }
}
