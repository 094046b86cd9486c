//! What is wrong with an input file, and where: the file, the key, the
//! message. Every parser (config, profiles, tariffs) reports with it, so an
//! operator sees each problem once, named, whichever file it is in.
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct ValidationError {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(file: &Path, key: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}
