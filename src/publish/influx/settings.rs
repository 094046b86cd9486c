//! Where and how to write: the write URL (path prefixes kept), credentials
//! from the config or files, batch size and timings.
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Influx;
use crate::duration::parse_duration;

#[derive(Clone)]
pub(super) enum Auth {
    Token(String),
    Basic(String, String),
    None,
}

/// Where and how to write. Credentials are never printed.
#[derive(Clone)]
pub struct InfluxSettings {
    pub write_url: String,
    pub(super) auth: Auth,
    pub gzip: bool,
    pub batch_lines: usize,
    pub flush_interval: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub dead_letter_dir: PathBuf,
}

impl std::fmt::Debug for InfluxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxSettings")
            .field("write_url", &self.write_url)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

fn secret(
    value: &Option<String>,
    file: &Option<PathBuf>,
    key: &str,
) -> Result<Option<String>, String> {
    match (value, file) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|e| format!("influxdb.{key}_file: cannot read {}: {e}", f.display())),
        (None, None) => Ok(None),
    }
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl InfluxSettings {
    pub fn from_config(c: &Influx, state_dir: &Path) -> Result<InfluxSettings, String> {
        // A path prefix (reverse proxy, VictoriaMetrics' /influx) is kept.
        let base = c.url.trim_end_matches('/');
        let (write_url, auth) = match c.api.as_str() {
            "v1" => {
                let db = c
                    .database
                    .as_deref()
                    .ok_or("influxdb.database is required with api = \"v1\"")?;
                let mut url = format!("{base}/write?db={}&precision=ms", query_escape(db));
                if let Some(rp) = &c.retention_policy {
                    url += &format!("&rp={}", query_escape(rp));
                }
                let password = secret(&c.password, &c.password_file, "password")?;
                let auth = match (&c.username, password) {
                    (Some(u), p) => Auth::Basic(u.clone(), p.unwrap_or_default()),
                    (None, _) => Auth::None,
                };
                (url, auth)
            }
            _ => {
                let bucket = c
                    .bucket
                    .as_deref()
                    .ok_or("influxdb.bucket is required with api = \"v2\"")?;
                let org = c.org.as_deref().unwrap_or("");
                let url = format!(
                    "{base}/api/v2/write?org={}&bucket={}&precision=ms",
                    query_escape(org),
                    query_escape(bucket)
                );
                let auth = secret(&c.token, &c.token_file, "token")?
                    .map(Auth::Token)
                    .unwrap_or(Auth::None);
                (url, auth)
            }
        };
        let d = |v: &str, key: &str| parse_duration(v).map_err(|m| format!("influxdb.{key}: {m}"));
        Ok(InfluxSettings {
            write_url,
            auth,
            gzip: c.gzip,
            batch_lines: c.batch_size.max(1),
            flush_interval: d(&c.flush_interval, "flush_interval")?,
            connect_timeout: d(&c.connect_timeout, "connect_timeout")?,
            request_timeout: d(&c.request_timeout, "request_timeout")?,
            dead_letter_dir: state_dir.join("influxdb-dead-letter"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> Influx {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn write_urls_keep_path_prefixes() {
        let s = InfluxSettings::from_config(&cfg("url = \"http://proxy:8080/influx/\"\nbucket = \"b s\"\norg = \"ops\"\ntoken = \"t\""), Path::new("/tmp")).unwrap();
        assert_eq!(
            s.write_url,
            "http://proxy:8080/influx/api/v2/write?org=ops&bucket=b%20s&precision=ms"
        );
        let s = InfluxSettings::from_config(&cfg("url = \"http://h:8086\"\napi = \"v1\"\ndatabase = \"bess\"\nretention_policy = \"y\""), Path::new("/tmp")).unwrap();
        assert_eq!(s.write_url, "http://h:8086/write?db=bess&precision=ms&rp=y");
    }
}
