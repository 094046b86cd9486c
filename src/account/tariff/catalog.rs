//! Where tariffs come from: the bundled set, then the configured
//! directories, or a file named on the command line.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Tariff;
use crate::validation::ValidationError;

/// Finds tariffs by id: the bundled set first, then each of `dirs`.
#[derive(Debug, Clone)]
pub struct TariffCatalog {
    dirs: Vec<PathBuf>,
}

impl TariffCatalog {
    pub fn new(dirs: &[PathBuf]) -> Self {
        Self {
            dirs: dirs.to_vec(),
        }
    }

    pub fn find(&self, id: &str) -> Option<(PathBuf, String)> {
        crate::bundled::find(crate::bundled::Kind::Tariffs, id, &self.dirs)
    }

    pub fn load(&self, id: &str) -> Option<Result<Arc<Tariff>, Vec<ValidationError>>> {
        self.find(id)
            .map(|(p, t)| Tariff::parse(&p, &t).map(Arc::new))
    }
}

/// Loads a tariff from a path (for `tariff show FILE` and `replay --tariff FILE`).
pub fn load_file(path: &Path) -> Result<Tariff, Vec<ValidationError>> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        vec![ValidationError::new(
            path,
            "",
            format!("cannot read: {err}"),
        )]
    })?;
    Tariff::parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_cannot_be_read_is_named() {
        let errs = load_file(Path::new("/nonexistent/t.toml")).unwrap_err();
        assert!(
            errs[0].to_string().contains("/nonexistent/t.toml"),
            "{}",
            errs[0]
        );
        assert!(TariffCatalog::new(&[])
            .load("cn-chongqing-ci-2025-02")
            .unwrap()
            .is_ok());
        assert!(TariffCatalog::new(&[]).load("nowhere").is_none());
    }
}
