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

#[cfg(test)]
mod tests {
    use super::*;

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
