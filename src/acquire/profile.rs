//! Register-map profiles: one TOML file per device model, loaded as data.
//!
//! A profile is parsed from its raw shape ([`ProfileFile`]), then checked and
//! resolved into a [`Profile`] whose points know their width in registers and
//! the index of their scale-factor point. Every problem found is reported with
//! the profile's file and the point's key, all at once.
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::planner::{self, Plan};
use crate::duration::parse_duration;
pub use crate::role::{Role, Sign};
use crate::validation::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    Coil,
    Discrete,
    Input,
    Holding,
}

impl Table {
    /// Coils and discrete inputs are addressed in bits, registers in 16-bit words.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::Discrete)
    }

    pub fn function_code(self) -> u8 {
        match self {
            Table::Coil => 1,
            Table::Discrete => 2,
            Table::Holding => 3,
            Table::Input => 4,
        }
    }

    /// The most a single read of this table may ask for (Modbus application protocol limits).
    pub fn protocol_max(self) -> u16 {
        if self.is_bits() {
            2000
        } else {
            125
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Table::Coil => "coil",
            Table::Discrete => "discrete",
            Table::Input => "input",
            Table::Holding => "holding",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    Bool,
    String,
}

impl DataType {
    /// Registers occupied (strings take their declared `length`).
    pub fn words(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bool => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::String => 0,
        }
    }

    pub fn is_numeric(self) -> bool {
        !matches!(self, DataType::Bool | DataType::String)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Order {
    /// Big-endian: first register holds the most significant word, high byte first.
    #[default]
    ABCD,
    /// Word-swapped: least significant word first, high byte first in each word.
    CDAB,
    /// Byte-swapped within each word, words in big-endian order.
    BADC,
    /// Fully little-endian.
    DCBA,
}

impl Order {
    pub fn words_reversed(self) -> bool {
        matches!(self, Order::CDAB | Order::DCBA)
    }
    pub fn bytes_swapped(self) -> bool {
        matches!(self, Order::BADC | Order::DCBA)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollClass {
    #[default]
    Fast,
    Slow,
}

/// The profile file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_max_regs")]
    pub max_registers_per_read: u16,
    #[serde(default = "default_max_gap")]
    pub max_gap: u16,
    #[serde(default = "default_pause")]
    pub pause_between_requests: String,
    /// Address ranges the device rejects or misbehaves on; never read, even to fill a gap.
    #[serde(default)]
    pub holes: Vec<HoleFile>,
    #[serde(default)]
    pub points: Vec<PointFile>,
}

fn default_max_regs() -> u16 {
    125
}
fn default_max_gap() -> u16 {
    8
}
fn default_pause() -> String {
    "0ms".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoleFile {
    pub table: Table,
    pub start: u16,
    pub end: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointFile {
    pub name: String,
    pub table: Table,
    pub address: u16,
    #[serde(rename = "type")]
    pub kind: DataType,
    #[serde(default)]
    pub order: Option<Order>,
    pub scale: Option<f64>,
    pub scale_factor: Option<String>,
    #[serde(default)]
    pub offset: f64,
    pub unit: Option<String>,
    pub role: Option<Role>,
    pub sign: Option<Sign>,
    #[serde(default)]
    pub poll: PollClass,
    pub valid: Option<[f64; 2]>,
    #[serde(default)]
    pub missing: Vec<i64>,
    /// For `bool` in a register: which bit (0 = least significant).
    pub bit: Option<u8>,
    /// For `string`: length in registers.
    pub length: Option<u16>,
    #[serde(default)]
    pub description: String,
}

/// A point ready for planning and decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub name: Arc<str>,
    pub table: Table,
    pub address: u16,
    pub kind: DataType,
    pub order: Order,
    /// Registers (or bits) occupied.
    pub width: u16,
    pub scale: f64,
    /// Index of the point holding a power-of-ten scale factor.
    pub scale_factor: Option<usize>,
    pub offset: f64,
    pub unit: Option<String>,
    pub role: Option<Role>,
    pub sign: Sign,
    pub poll: PollClass,
    pub valid: Option<(f64, f64)>,
    /// Raw bit patterns (masked to the point's width) meaning "not available".
    pub missing: Vec<u64>,
    pub bit: Option<u8>,
    /// True when some other point uses this one as its scale factor.
    pub is_scale_factor: bool,
}

impl Point {
    pub fn end(&self) -> u32 {
        self.address as u32 + self.width as u32
    }
}

/// Comparable, so a reloaded configuration restarts only the devices whose
/// profile really changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: String,
    pub description: String,
    pub source: PathBuf,
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
    let err = |errs: &mut Vec<ValidationError>, key: String, msg: String| {
        errs.push(ValidationError::new(source, &key, msg));
    };
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !stem.is_empty() && file.id != stem {
        err(
            &mut errs,
            "id".into(),
            format!("`{}` must equal the file stem `{stem}`", file.id),
        );
    }
    if file.max_registers_per_read == 0 || file.max_registers_per_read > 125 {
        err(
            &mut errs,
            "max_registers_per_read".into(),
            format!("{} is outside 1..=125", file.max_registers_per_read),
        );
    }
    let pause = parse_duration(&file.pause_between_requests).unwrap_or_else(|m| {
        err(&mut errs, "pause_between_requests".into(), m);
        Duration::ZERO
    });
    for (i, h) in file.holes.iter().enumerate() {
        if h.end < h.start {
            err(
                &mut errs,
                format!("holes[{i}]"),
                "end is before start".into(),
            );
        }
    }
    if file.points.is_empty() {
        err(
            &mut errs,
            "points".into(),
            "a profile needs at least one point".into(),
        );
    }

    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, p) in file.points.iter().enumerate() {
        if let Some(first) = names.insert(&p.name, i) {
            err(
                &mut errs,
                key(i, &p.name, "name"),
                format!("duplicate point name (also points[{first}])"),
            );
        }
    }

    let mut points = Vec::with_capacity(file.points.len());
    for (i, p) in file.points.iter().enumerate() {
        let k = |field: &str| key(i, &p.name, field);
        if !is_snake_case(&p.name) {
            err(
                &mut errs,
                k("name"),
                format!("`{}` is not snake_case", p.name),
            );
        }
        let order = p.order.unwrap_or_default();
        let width = match (p.kind, p.table.is_bits()) {
            (DataType::Bool, true) => {
                if p.bit.is_some() {
                    err(
                        &mut errs,
                        k("bit"),
                        format!(
                            "a {} is a single bit already; `bit` applies to registers",
                            p.table
                        ),
                    );
                }
                if p.order.is_some_and(|o| o != Order::ABCD) {
                    err(
                        &mut errs,
                        k("order"),
                        "a coil or discrete input has no byte order".into(),
                    );
                }
                1
            }
            (_, true) => {
                err(
                    &mut errs,
                    k("type"),
                    format!(
                        "a {} table holds single bits; only type = \"bool\" can be decoded from it",
                        p.table
                    ),
                );
                1
            }
            (DataType::Bool, false) => {
                match p.bit {
                    Some(b) if b < 16 => {}
                    Some(b) => err(&mut errs, k("bit"), format!("{b} is outside 0..=15")),
                    None => err(
                        &mut errs,
                        k("bit"),
                        "a bool in a register needs `bit` (0..=15)".into(),
                    ),
                }
                1
            }
            (DataType::String, false) => match p.length {
                Some(n) if (1..=125).contains(&n) => n,
                _ => {
                    err(
                        &mut errs,
                        k("length"),
                        "a string needs `length` in registers (1..=125)".into(),
                    );
                    1
                }
            },
            (t, false) => {
                if t.words() == 1 && matches!(order, Order::CDAB) {
                    err(
                        &mut errs,
                        k("order"),
                        "CDAB swaps words, but a 16-bit value has one word; use ABCD or BADC"
                            .into(),
                    );
                }
                t.words()
            }
        };
        if matches!(p.kind, DataType::String) && p.order.is_some_and(|o| o.words_reversed()) {
            err(
                &mut errs,
                k("order"),
                "a string is read in register order; use ABCD or BADC".into(),
            );
        }
        if p.length.is_some() && p.kind != DataType::String {
            err(
                &mut errs,
                k("length"),
                "`length` applies only to strings".into(),
            );
        }
        if p.address as u32 + width as u32 > 65536 {
            err(
                &mut errs,
                k("address"),
                "the point runs past address 65535".into(),
            );
        }
        if let Some(s) = p.scale {
            if !s.is_finite() || s == 0.0 {
                err(&mut errs, k("scale"), format!("{s} is not a usable scale"));
            }
        }
        if !p.kind.is_numeric()
            && (p.scale.is_some()
                || p.scale_factor.is_some()
                || p.valid.is_some()
                || p.offset != 0.0)
        {
            err(
                &mut errs,
                k("type"),
                format!(
                    "scale, offset and valid need a numeric type, not {:?}",
                    p.kind
                )
                .to_lowercase(),
            );
        }
        if let Some([lo, hi]) = p.valid {
            if lo.partial_cmp(&hi).is_none_or(|o| o.is_gt()) {
                err(&mut errs, k("valid"), format!("[{lo}, {hi}] is empty"));
            }
        }
        let is_power = matches!(p.role, Some(Role::BatteryPower));
        if p.sign.is_some() && !is_power {
            err(
                &mut errs,
                k("sign"),
                "`sign` applies to the battery_power role only".into(),
            );
        }
        if p.role
            .is_some_and(|r| r != Role::Status && r != Role::Alarm)
            && !p.kind.is_numeric()
        {
            err(
                &mut errs,
                k("role"),
                "this role needs a numeric type".into(),
            );
        }
        if p.role.is_some_and(Role::is_counter)
            && !matches!(p.kind, DataType::U16 | DataType::U32 | DataType::U64)
        {
            err(
                &mut errs,
                k("type"),
                "an energy counter must be u16, u32 or u64 so a wrap can be told from a reset"
                    .into(),
            );
        }
        let scale_factor = p.scale_factor.as_ref().and_then(|sf| match names.get(sf.as_str()) {
            None => {
                err(&mut errs, k("scale_factor"), format!("no point named `{sf}`"));
                None
            }
            Some(&j) => {
                let q = &file.points[j];
                if !matches!(q.kind, DataType::I16 | DataType::U16) {
                    err(&mut errs, k("scale_factor"), format!("`{sf}` must be i16 or u16"));
                }
                if q.table != p.table {
                    err(&mut errs, k("scale_factor"), format!("`{sf}` is in the {} table; a value and its scale factor must share a table to be read in one request", q.table));
                }
                if q.scale_factor.is_some() {
                    err(&mut errs, k("scale_factor"), format!("`{sf}` has a scale factor of its own"));
                }
                Some(j)
            }
        });
        let mask = if width >= 4 {
            u64::MAX
        } else {
            (1u64 << (16 * width as u32)) - 1
        };
        points.push(Point {
            name: p.name.as_str().into(),
            table: p.table,
            address: p.address,
            kind: p.kind,
            order,
            width,
            scale: p.scale.unwrap_or(1.0),
            scale_factor,
            offset: p.offset,
            unit: p.unit.clone(),
            role: p.role,
            sign: p.sign.unwrap_or(Sign::DischargePositive),
            poll: p.poll,
            valid: p.valid.map(|[a, b]| (a, b)),
            missing: p.missing.iter().map(|&m| (m as u64) & mask).collect(),
            bit: p.bit,
            is_scale_factor: false,
        });
    }
    for i in 0..points.len() {
        if let Some(j) = points[i].scale_factor {
            points[j].is_scale_factor = true;
        }
    }

    let mut roles: HashMap<Role, usize> = HashMap::new();
    for (i, p) in points.iter().enumerate() {
        if let Some(r) = p.role {
            if let Some(first) = roles.insert(r, i) {
                err(
                    &mut errs,
                    key(i, &p.name, "role"),
                    format!("role {r:?} is already taken by `{}`", points[first].name)
                        .to_lowercase(),
                );
            }
        }
    }

    // Overlaps: two points may share a register only as different bits of it.
    let mut by_addr: Vec<usize> = (0..points.len()).collect();
    by_addr.sort_by_key(|&i| (points[i].table, points[i].address));
    for w in 0..by_addr.len() {
        for &j in &by_addr[w + 1..] {
            let (a, b) = (&points[by_addr[w]], &points[j]);
            if a.table != b.table || b.address as u32 >= a.end() {
                break;
            }
            let bits_apart = a.kind == DataType::Bool
                && b.kind == DataType::Bool
                && !a.table.is_bits()
                && a.bit != b.bit;
            if !bits_apart {
                err(
                    &mut errs,
                    key(j, &b.name, "address"),
                    format!(
                        "{} {:#06x}..{:#06x} overlaps `{}` at {:#06x}..{:#06x}",
                        b.table,
                        b.address,
                        b.end() - 1,
                        a.name,
                        a.address,
                        a.end() - 1
                    ),
                );
            }
        }
    }
    for (i, p) in points.iter().enumerate() {
        for h in &file.holes {
            if h.table == p.table && (p.address as u32) <= h.end as u32 && p.end() > h.start as u32
            {
                err(
                    &mut errs,
                    key(i, &p.name, "address"),
                    format!("lies in the declared hole {:#06x}..{:#06x}", h.start, h.end),
                );
            }
        }
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    let mut profile = Profile {
        id: file.id,
        description: file.description,
        source: source.to_path_buf(),
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

fn key(i: usize, name: &str, field: &str) -> String {
    format!("points[{i}] ({name}).{field}")
}

fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

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
