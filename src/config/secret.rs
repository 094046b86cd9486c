//! Secret files under systemd's credentials directory. `LoadCredential`
//! puts them in `/run/credentials/<unit>/`, readable by the service alone:
//! an operator running `bessmon check` outside it cannot read them, which
//! says nothing about whether the service can. There, an unreadable file is
//! a warning; inside the service (`$CREDENTIALS_DIRECTORY` set) it is the
//! error it looks like.
use std::path::Path;

const CREDENTIALS: &str = "/run/credentials/";

/// True when `path` cannot be read here but may well be in the service.
pub fn unverifiable(path: &Path) -> bool {
    unverifiable_in(path, std::env::var_os("CREDENTIALS_DIRECTORY").is_some())
}

fn unverifiable_in(path: &Path, inside_service: bool) -> bool {
    !inside_service && path.starts_with(CREDENTIALS) && std::fs::File::open(path).is_err()
}

/// The warning for such a file under `key`.
pub fn warning(key: &str, path: &Path) -> String {
    format!(
        "{key} {}: not readable here; it is a systemd credential, which only the service can read (checked when the service starts)",
        path.display()
    )
}

/// Secrets and certificates are a few kilobytes; a path pointing at a device
/// or a log file by mistake must not be read into memory whole.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads a secret or certificate file, refusing one larger than any such file is.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {} KiB: not a secret or certificate file",
            path.display(),
            MAX_FILE_BYTES >> 10
        ));
    }
    Ok(bytes)
}

/// Reads a secret file as text without its trailing line end.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = read(path)?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// The warning for a secret file every user of the host can read, if it is one.
pub fn exposed(key: &str, path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| {
        format!(
            "{key} {}: readable by every user on this host (mode {:o}); `chmod 600` it, or 640 with the service's group",
            path.display(),
            mode & 0o777
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_readable_by_others_is_named_and_a_private_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = exposed("influxdb.token_file", &f).expect("0644 is readable by others");
        assert!(
            w.contains("influxdb.token_file") && w.contains("644"),
            "{w}"
        );
        assert!(!w.contains("s3cret"), "{w}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(exposed("influxdb.token_file", &f), None);
        assert_eq!(read_text(&f).unwrap(), "s3cret");
    }

    #[test]
    fn a_file_too_large_to_be_a_secret_is_refused_without_reading_it_whole() {
        let err = read(Path::new("/dev/zero")).unwrap_err();
        assert!(
            err.contains("/dev/zero") && err.contains("larger than"),
            "{err}"
        );
    }

    #[test]
    fn only_credentials_outside_the_service_are_unverifiable() {
        let missing = Path::new("/run/credentials/bessmon.service/mqtt-password-for-a-test");
        assert!(unverifiable_in(missing, false));
        assert!(
            !unverifiable_in(missing, true),
            "inside the service it is an error"
        );
        assert!(!unverifiable_in(Path::new("/nonexistent/pw"), false));
    }
}
