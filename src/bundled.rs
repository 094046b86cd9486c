//! Profiles and tariffs compiled into the binary, so `bessmon demo` and `check`
//! work on a machine where nothing else is installed. Each entry is `(id, toml)`,
//! the id being the file stem.
include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

pub fn profile(id: &str) -> Option<&'static str> {
    PROFILES.iter().find(|(i, _)| *i == id).map(|(_, t)| *t)
}

pub fn tariff(id: &str) -> Option<&'static str> {
    TARIFFS.iter().find(|(i, _)| *i == id).map(|(_, t)| *t)
}
