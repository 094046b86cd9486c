//! Where profiles come from: the bundled set, then the configured directories.
use std::path::PathBuf;
use std::sync::Arc;

use super::Profile;
use crate::validation::ValidationError;

/// Finds profiles by id: the bundled set first, then each of `dirs` in order.
#[derive(Debug, Clone)]
pub struct ProfileCatalog {
    dirs: Vec<PathBuf>,
}

impl ProfileCatalog {
    pub fn new(dirs: &[PathBuf]) -> Self {
        Self {
            dirs: dirs.to_vec(),
        }
    }

    /// The first matching source: `(path shown in errors, text)`.
    pub fn find(&self, id: &str) -> Option<(PathBuf, String)> {
        crate::bundled::find(crate::bundled::Kind::Profiles, id, &self.dirs)
    }

    /// Files under `dirs` that a bundled profile hides (the bundled set is searched first).
    pub fn shadowed(&self) -> Vec<PathBuf> {
        crate::bundled::shadowed(crate::bundled::Kind::Profiles, &self.dirs)
    }

    pub fn load(&self, id: &str) -> Option<Result<Arc<Profile>, Vec<ValidationError>>> {
        self.find(id)
            .map(|(path, text)| Profile::parse(&path, &text).map(Arc::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_profiles_come_first_and_a_shadowed_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("bessmon-sim-pcs.toml");
        std::fs::write(&own, "id = \"bessmon-sim-pcs\"").unwrap();
        let c = ProfileCatalog::new(&[dir.path().to_path_buf()]);
        let p = c.load("bessmon-sim-pcs").unwrap().unwrap();
        assert!(!p.points.is_empty(), "the bundled one, not the empty file");
        assert_eq!(c.shadowed(), [own]);
        assert!(c.load("no-such-profile").is_none());
    }

    #[test]
    fn a_profile_in_a_directory_is_found_and_its_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("site-meter.toml");
        std::fs::write(&f, "id = \"site-meter\"\npoints = []").unwrap();
        let errs = ProfileCatalog::new(&[dir.path().to_path_buf()])
            .load("site-meter")
            .unwrap()
            .unwrap_err();
        assert!(
            errs[0].to_string().contains("site-meter.toml"),
            "{}",
            errs[0]
        );
    }
}
