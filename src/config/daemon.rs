//! `[daemon]` checked and resolved: the listener as an address, the API token
//! read from its file now (a missing file stops the start, not the first
//! request).
use std::net::SocketAddr;
use std::path::PathBuf;

use super::validate::id_problem;
use super::Daemon;

#[derive(Clone, PartialEq)]
pub struct DaemonSettings {
    /// The MQTT client id and the status topic's level.
    pub instance: String,
    pub state_dir: PathBuf,
    pub http_listen: SocketAddr,
    /// The bearer token the HTTP API asks for, when set.
    pub http_token: Option<String>,
    /// `/metrics` without the token.
    pub metrics_public: bool,
    /// Capacity of the channel from pollers to accounting, in samples.
    pub sample_queue: usize,
}

impl std::fmt::Debug for DaemonSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonSettings")
            .field("instance", &self.instance)
            .field("state_dir", &self.state_dir)
            .field("http_listen", &self.http_listen)
            .field("http_token", &self.http_token.as_ref().map(|_| "(set)"))
            .field("metrics_public", &self.metrics_public)
            .field("sample_queue", &self.sample_queue)
            .finish()
    }
}

/// Checks `[daemon]`, reporting problems through `e` and doubtful choices
/// through `warn`; the settings when there was no problem.
pub fn check(
    d: &Daemon,
    e: &mut impl FnMut(String, String),
    warn: &mut impl FnMut(String),
) -> Option<DaemonSettings> {
    let mut ok = true;
    if let Some(p) = id_problem(&d.instance) {
        ok = false;
        e("daemon.instance".into(), p);
    }
    let http_listen = match d.http_listen.parse::<SocketAddr>() {
        Ok(a) => {
            if !a.ip().is_loopback() && d.http_token_file.is_none() {
                warn(format!(
                    "daemon.http_listen {a} is not loopback and no daemon.http_token_file is set: the API is open to the network"
                ));
            }
            Some(a)
        }
        Err(_) => {
            e(
                "daemon.http_listen".into(),
                format!("`{}` is not an address:port", d.http_listen),
            );
            None
        }
    };
    if d.sample_queue == 0 {
        ok = false;
        e("daemon.sample_queue".into(), "must be at least 1".into());
    }
    let http_token = match &d.http_token_file {
        None => None,
        Some(f) if super::secret::unverifiable(f) => None,
        Some(f) => match super::secret::read_text(f) {
            Ok(t) if t.trim().is_empty() => {
                ok = false;
                e(
                    "daemon.http_token_file".into(),
                    format!(
                        "{} is empty: a blank token would protect nothing",
                        f.display()
                    ),
                );
                None
            }
            Ok(t) => Some(t.trim().to_string()),
            Err(err) => {
                ok = false;
                e("daemon.http_token_file".into(), err);
                None
            }
        },
    };
    let http_listen = http_listen?;
    ok.then(|| DaemonSettings {
        instance: d.instance.clone(),
        state_dir: d.state_dir.clone(),
        http_listen,
        http_token,
        metrics_public: d.metrics_public,
        sample_queue: d.sample_queue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(toml_text: &str) -> (Option<DaemonSettings>, Vec<String>, Vec<String>) {
        let d: Daemon = toml::from_str(toml_text).unwrap();
        let (mut errs, mut warns) = (Vec::new(), Vec::new());
        let s = check(&d, &mut |k, m| errs.push(format!("{k}: {m}")), &mut |w| {
            warns.push(w)
        });
        (s, errs, warns)
    }

    #[test]
    fn the_token_is_read_once_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "  tok\n").unwrap();
        let (s, errs, warns) = checked(&format!(
            "http_listen = \"0.0.0.0:9810\"\nhttp_token_file = \"{}\"",
            f.display()
        ));
        let s = s.unwrap();
        assert!(errs.is_empty() && warns.is_empty(), "{errs:?} {warns:?}");
        assert_eq!(s.http_token.as_deref(), Some("tok"));
        assert_eq!(s.http_listen.port(), 9810);
        assert!(!format!("{s:?}").contains("tok\""));
    }

    #[test]
    fn problems_are_named_and_an_open_api_is_a_warning() {
        let (s, errs, _) = checked(
            "instance = \"a b\"\nhttp_listen = \"localhost\"\nsample_queue = 0\nhttp_token_file = \"/nonexistent/t\"",
        );
        assert!(s.is_none());
        for key in [
            "daemon.instance",
            "daemon.http_listen",
            "daemon.sample_queue",
            "daemon.http_token_file",
        ] {
            assert!(errs.iter().any(|e| e.starts_with(key)), "{key}: {errs:#?}");
        }
        let (s, errs, warns) = checked("http_listen = \"0.0.0.0:9810\"");
        assert!(s.is_some() && errs.is_empty());
        assert!(warns[0].contains("open to the network"), "{warns:?}");
    }
}
