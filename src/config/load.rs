//! Reading the config file and layering `BESSMON__SECTION__KEY` overrides on it.
use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat};

use super::Config;

/// Where a config comes from; the name is what error messages cite.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// Built in (the demo) or written by a test: a name and the TOML text.
    Inline {
        name: String,
        toml: String,
    },
}

impl ConfigSource {
    pub fn name(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Inline { name, .. } => name.clone(),
        }
    }

    /// `-c` if given, else `$BESSMON_CONFIG`, else the packaged default path.
    pub fn from_arg(arg: Option<&Path>) -> Self {
        let path = arg
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("BESSMON_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/etc/bessmon/bessmon.toml"));
        ConfigSource::File(path)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct LoadError {
    pub source_name: String,
    pub message: String,
}

pub fn load(source: &ConfigSource) -> Result<Config, LoadError> {
    let fail = |message: String| LoadError {
        source_name: source.name(),
        message,
    };
    let file = match source {
        ConfigSource::File(path) => {
            // Read it ourselves: the config crate's own "not found" names no path.
            let text = std::fs::read_to_string(path)
                .map_err(|e| fail(format!("cannot read config file: {e}")))?;
            File::from_str(&text, FileFormat::Toml)
        }
        ConfigSource::Inline { toml, .. } => File::from_str(toml, FileFormat::Toml),
    };
    let env = Environment::with_prefix("BESSMON")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("daemon.profile_dirs")
        .with_list_parse_key("daemon.tariff_dirs");
    let built = config::Config::builder()
        .add_source(file)
        .add_source(env)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    built
        .try_deserialize::<Config>()
        .map_err(|e| fail(e.to_string()))
}
