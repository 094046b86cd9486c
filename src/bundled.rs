//! Profiles and tariffs compiled into the binary, so `bessmon demo` and `check`
//! work on a machine where nothing else is installed, and the search through
//! them and the operator's directories. Each entry is `(id, toml)`, the id
//! being the file stem.
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Profiles,
    Tariffs,
}

impl Kind {
    fn entries(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Profiles => PROFILES,
            Kind::Tariffs => TARIFFS,
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Kind::Profiles => "profiles",
            Kind::Tariffs => "tariffs",
        }
    }
}

pub fn profile(id: &str) -> Option<&'static str> {
    bundled(Kind::Profiles, id)
}

pub fn tariff(id: &str) -> Option<&'static str> {
    bundled(Kind::Tariffs, id)
}

fn bundled(kind: Kind, id: &str) -> Option<&'static str> {
    kind.entries()
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, t)| *t)
}

/// The bundled file first, then `<dir>/<id>.toml` in each of `dirs`: the path to
/// cite in errors, and the text.
pub fn find(kind: Kind, id: &str, dirs: &[PathBuf]) -> Option<(PathBuf, String)> {
    if let Some(text) = bundled(kind, id) {
        return Some((
            PathBuf::from(format!("<bundled>/{}/{id}.toml", kind.dir())),
            text.to_string(),
        ));
    }
    dirs.iter().find_map(|d| {
        let p = d.join(format!("{id}.toml"));
        std::fs::read_to_string(&p).ok().map(|t| (p, t))
    })
}

/// Files in `dirs` that a bundled entry of the same id hides.
pub fn shadowed(kind: Kind, dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .flat_map(|d| {
            kind.entries()
                .iter()
                .map(move |(id, _)| d.join(format!("{id}.toml")))
        })
        .filter(|p: &PathBuf| Path::exists(p))
        .collect()
}
