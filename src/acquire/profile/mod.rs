//! Register-map profiles: one TOML file per device model, loaded as data.
//!
//! A profile is parsed from its raw shape (`file`), then each point is
//! checked and resolved on its own (`point`: width, order, scale factor),
//! then the points together (`overlap`: roles, shared registers, holes), and
//! finally planned into requests. Every problem found is reported with the
//! profile's file and the point's key, all at once. `register` holds the
//! vocabulary of tables, types and byte orders; `catalog` finds profiles.
mod catalog;
mod file;
mod overlap;
mod point;
mod register;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use catalog::ProfileCatalog;
pub use file::{HoleFile, PointFile, ProfileFile, Verified};
pub use point::Point;
pub use register::{DataType, Order, PollClass, Table, Transformer};

use super::planner::{self, Plan};
use crate::duration::parse_duration;
pub use crate::role::{Role, Sign};
use crate::validation::ValidationError;

/// Comparable, so a reloaded configuration restarts only the devices whose
/// profile really changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: String,
    pub description: String,
    pub source: PathBuf,
    /// The document the map comes from, as the file says.
    pub document: Option<String>,
    pub verified: Option<Verified>,
    /// Point addresses are worked out against the device's SunSpec chain when it connects.
    pub sunspec: bool,
    pub max_registers_per_read: u16,
    pub max_gap: u16,
    pub pause_between_requests: Duration,
    pub holes: Vec<HoleFile>,
    pub points: Vec<Point>,
    pub plan: Plan,
}

impl Profile {
    pub fn point(&self, name: &str) -> Option<(usize, &Point)> {
        self.points
            .iter()
            .enumerate()
            .find(|(_, p)| &*p.name == name)
    }

    /// The profile as one installation reads it: every point behind a
    /// transformer scaled by that installation's ratios. None when no point
    /// is marked (the ratios would change nothing, which is a mistake to say).
    pub fn with_ratios(&self, ct: f64, pt: f64) -> Option<Profile> {
        if !self.points.iter().any(|p| p.transformer.is_some()) {
            return None;
        }
        let mut p = self.clone();
        for q in &mut p.points {
            if let Some(t) = q.transformer {
                q.scale *= t.factor(ct, pt);
            }
        }
        Some(p)
    }

    pub fn point_with_role(&self, role: Role) -> Option<(usize, &Point)> {
        self.points
            .iter()
            .enumerate()
            .find(|(_, p)| p.role == Some(role))
    }

    /// Parses and checks a profile; `source` names the file in every error.
    pub fn parse(source: &Path, text: &str) -> Result<Profile, Vec<ValidationError>> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| {
            vec![ValidationError::new(
                source,
                "",
                e.message().to_string() + &toml_location(text, e.span()),
            )]
        })?;
        resolve(source, file)
    }
}

fn toml_location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn resolve(source: &Path, file: ProfileFile) -> Result<Profile, Vec<ValidationError>> {
    let mut errs = Vec::new();
    let mut err = |key: String, msg: String| errs.push(ValidationError::new(source, &key, msg));
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !stem.is_empty() && file.id != stem {
        err(
            "id".into(),
            format!("`{}` must equal the file stem `{stem}`", file.id),
        );
    }
    if file.max_registers_per_read == 0 || file.max_registers_per_read > 125 {
        err(
            "max_registers_per_read".into(),
            format!("{} is outside 1..=125", file.max_registers_per_read),
        );
    }
    let pause = parse_duration(&file.pause_between_requests).unwrap_or_else(|m| {
        err("pause_between_requests".into(), m);
        Duration::ZERO
    });
    for (i, h) in file.holes.iter().enumerate() {
        if h.end < h.start {
            err(format!("holes[{i}]"), "end is before start".into());
        }
    }
    if file.points.is_empty() {
        err("points".into(), "a profile needs at least one point".into());
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, p) in file.points.iter().enumerate() {
        if let Some(first) = names.insert(&p.name, i) {
            err(
                point::key(i, &p.name, "name"),
                format!("duplicate point name (also points[{first}])"),
            );
        }
    }
    let mut points: Vec<Point> = file
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| point::check(i, p, &file, &names, &mut err))
        .collect();
    for i in 0..points.len() {
        if let Some(j) = points[i].scale_factor {
            points[j].is_scale_factor = true;
        }
    }
    overlap::check(&points, &file.holes, &mut err);
    if !errs.is_empty() {
        return Err(errs);
    }
    let mut profile = Profile {
        id: file.id,
        description: file.description,
        source: source.to_path_buf(),
        document: file.source,
        verified: file.verified,
        sunspec: file.sunspec,
        max_registers_per_read: file.max_registers_per_read,
        max_gap: file.max_gap,
        pause_between_requests: pause,
        holes: file.holes,
        points,
        plan: Plan::default(),
    };
    match planner::plan(&profile) {
        Ok(plan) => profile.plan = plan,
        Err(e) => return Err(vec![ValidationError::new(source, "points", e)]),
    }
    Ok(profile)
}

#[cfg(test)]
mod tests;
