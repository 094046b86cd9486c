//! What was published retained last time, kept beside the spool.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What was published retained last time, kept beside the spool so a device
/// removed from the config can have its retained topics cleared.
fn registry_path(dir: &Path) -> PathBuf {
    dir.join("mqtt-retained.json")
}

pub fn load_registry(dir: &Path) -> BTreeSet<String> {
    std::fs::read(registry_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save_registry(dir: &Path, topics: &BTreeSet<String>) {
    let path = registry_path(dir);
    let tmp = path.with_extension("json.tmp");
    let ok = serde_json::to_vec(topics)
        .ok()
        .and_then(|b| std::fs::write(&tmp, b).ok())
        .and_then(|_| std::fs::rename(&tmp, &path).ok());
    if ok.is_none() {
        tracing::warn!(
            "cannot write {}: removed devices' retained topics may not be cleared next time",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_survives_a_restart_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_registry(dir.path()).is_empty());
        let topics: BTreeSet<String> =
            ["b/s/pcs/state".to_string(), "b/s/savings".to_string()].into();
        save_registry(dir.path(), &topics);
        assert_eq!(load_registry(dir.path()), topics);
    }
}
