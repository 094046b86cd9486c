//! `[influxdb]` checked and resolved: the write URL built once (path prefixes
//! kept, for reverse proxies and VictoriaMetrics' `/influx`), credentials read
//! from their files now, batch size and timings parsed. The sink receives this
//! and never looks at the file's strings.
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Influx;
use crate::duration::{parse_bytes, parse_duration};

#[derive(Clone, PartialEq)]
pub enum InfluxAuth {
    /// v2: `Authorization: Token ...`.
    Token(String),
    /// v1: HTTP basic authentication.
    Basic(String, String),
    None,
}

/// Which write endpoint the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfluxApi {
    /// `/api/v2/write` (InfluxDB 2 and 3, 1.8+, VictoriaMetrics).
    V2,
    /// `/write` (InfluxDB 1.x).
    V1,
}

/// Where and how to write. Credentials are never printed.
#[derive(Clone, PartialEq)]
pub struct InfluxSettings {
    pub api: InfluxApi,
    /// The configured base URL, for logs.
    pub url: String,
    pub write_url: String,
    pub auth: InfluxAuth,
    pub gzip: bool,
    pub batch_lines: usize,
    pub flush_interval: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub dead_letter_dir: PathBuf,
    pub dead_letter_max_bytes: u64,
}

impl std::fmt::Debug for InfluxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxSettings")
            .field("api", &self.api)
            .field("write_url", &self.write_url)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
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

/// A secret given inline (environment) or in a file, whose trailing newline
/// is not part of it.
fn secret(
    value: &Option<String>,
    file: &Option<PathBuf>,
    key: &str,
    e: &mut impl FnMut(String, String),
) -> Result<Option<String>, ()> {
    let file = &file.clone().filter(|f| !super::secret::unverifiable(f));
    match (value, file) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(f)) => super::secret::read_text(f)
            .map(Some)
            .map_err(|err| e(format!("influxdb.{key}_file"), err)),
        (None, None) => Ok(None),
    }
}

/// Checks `[influxdb]`, reporting every problem through `e`; the settings
/// when there was none.
pub fn check(
    c: &Influx,
    state_dir: &Path,
    e: &mut impl FnMut(String, String),
) -> Option<InfluxSettings> {
    let mut ok = true;
    if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
        ok = false;
        e(
            "influxdb.url".into(),
            format!("`{}` must start with http:// or https://", c.url),
        );
    }
    let base = c.url.trim_end_matches('/');
    let endpoint = match c.api.as_str() {
        "v2" => match c.bucket.as_deref() {
            Some(bucket) => {
                let url = format!(
                    "{base}/api/v2/write?org={}&bucket={}&precision=ms",
                    query_escape(c.org.as_deref().unwrap_or("")),
                    query_escape(bucket)
                );
                secret(&c.token, &c.token_file, "token", e).ok().map(|t| {
                    (
                        InfluxApi::V2,
                        url,
                        t.map_or(InfluxAuth::None, InfluxAuth::Token),
                    )
                })
            }
            None => {
                e(
                    "influxdb.bucket".into(),
                    "api = \"v2\" needs a bucket".into(),
                );
                None
            }
        },
        "v1" => match c.database.as_deref() {
            Some(db) => {
                let mut url = format!("{base}/write?db={}&precision=ms", query_escape(db));
                if let Some(rp) = &c.retention_policy {
                    url += &format!("&rp={}", query_escape(rp));
                }
                secret(&c.password, &c.password_file, "password", e)
                    .ok()
                    .map(|p| {
                        let auth = match &c.username {
                            Some(u) => InfluxAuth::Basic(u.clone(), p.unwrap_or_default()),
                            None => InfluxAuth::None,
                        };
                        (InfluxApi::V1, url, auth)
                    })
            }
            None => {
                e(
                    "influxdb.database".into(),
                    "api = \"v1\" needs a database".into(),
                );
                None
            }
        },
        other => {
            e(
                "influxdb.api".into(),
                format!("`{other}` is not \"v2\" or \"v1\""),
            );
            None
        }
    };
    let mut duration = |key: &str, v: &str| {
        parse_duration(v)
            .map_err(|msg| e(format!("influxdb.{key}"), msg))
            .ok()
    };
    let flush_interval = duration("flush_interval", &c.flush_interval);
    let connect_timeout = duration("connect_timeout", &c.connect_timeout);
    let request_timeout = duration("request_timeout", &c.request_timeout);
    let dead_letter_max_bytes = parse_bytes(&c.dead_letter_max_bytes)
        .map_err(|msg| e("influxdb.dead_letter_max_bytes".into(), msg))
        .ok();
    if c.batch_size == 0 {
        ok = false;
        e("influxdb.batch_size".into(), "must be at least 1".into());
    }
    let (api, write_url, auth) = endpoint?;
    if !ok {
        return None;
    }
    Some(InfluxSettings {
        api,
        url: c.url.clone(),
        write_url,
        auth,
        gzip: c.gzip,
        batch_lines: c.batch_size,
        flush_interval: flush_interval?,
        connect_timeout: connect_timeout?,
        request_timeout: request_timeout?,
        dead_letter_dir: state_dir.join("influxdb-dead-letter"),
        dead_letter_max_bytes: dead_letter_max_bytes?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(toml_text: &str) -> Result<InfluxSettings, Vec<String>> {
        let c: Influx = toml::from_str(toml_text).unwrap();
        let mut errs = Vec::new();
        let s = check(&c, Path::new("/state"), &mut |k, msg| {
            errs.push(format!("{k}: {msg}"))
        });
        match s {
            Some(s) if errs.is_empty() => Ok(s),
            _ => Err(errs),
        }
    }

    #[test]
    fn write_urls_keep_path_prefixes() {
        let s = checked(
            "url = \"http://proxy:8080/influx/\"\nbucket = \"b s\"\norg = \"ops\"\ntoken = \"t\"",
        )
        .unwrap();
        assert_eq!(
            s.write_url,
            "http://proxy:8080/influx/api/v2/write?org=ops&bucket=b%20s&precision=ms"
        );
        assert!(s.auth == InfluxAuth::Token("t".into()));
        let s = checked(
            "url = \"http://h:8086\"\napi = \"v1\"\ndatabase = \"bess\"\nretention_policy = \"y\"",
        )
        .unwrap();
        assert_eq!(s.write_url, "http://h:8086/write?db=bess&precision=ms&rp=y");
        assert_eq!(s.api, InfluxApi::V1);
        assert_eq!(s.request_timeout, Duration::from_secs(30), "the default");
    }

    #[test]
    fn the_token_file_is_read_at_validation_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "t0ken\r\n").unwrap();
        let s = checked(&format!(
            "url = \"http://h\"\nbucket = \"b\"\ntoken_file = \"{}\"\nflush_interval = \"250ms\"",
            f.display()
        ))
        .unwrap();
        assert!(s.auth == InfluxAuth::Token("t0ken".into()));
        assert_eq!(s.flush_interval, Duration::from_millis(250));
        assert!(!format!("{s:?}").contains("t0ken"));
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let errs = checked(
            "url = \"h:8086\"\napi = \"v1\"\npassword_file = \"/nonexistent/pw\"\nusername = \"u\"\ndatabase = \"d\"\nbatch_size = 0\nflush_interval = \"soon\"",
        )
        .unwrap_err();
        for key in [
            "influxdb.url",
            "influxdb.password_file",
            "influxdb.batch_size",
            "influxdb.flush_interval",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(key)),
                "{key} missing from {errs:#?}"
            );
        }
        let errs = checked("api = \"v3\"").unwrap_err();
        assert!(errs[0].starts_with("influxdb.api"), "{errs:?}");
    }
}
