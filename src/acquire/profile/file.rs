//! A profile file as written, before any check: serde's view of the TOML.
use serde::Deserialize;

use super::register::{DataType, Order, PollClass, Table, Transformer};
use crate::role::{Role, Sign};

/// The profile file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// The document the map comes from: title, version or date.
    #[serde(default)]
    pub source: Option<String>,
    /// How far the map has been checked.
    #[serde(default)]
    pub verified: Option<Verified>,
    /// Model addresses come from the device's own SunSpec chain at start-up;
    /// every point then names its `model` and `model_offset`.
    #[serde(default)]
    pub sunspec: bool,
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

/// How far a profile's map has been checked: against a device, against its
/// published document, or not at all (transcribed by others; sources disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verified {
    Device,
    Document,
    Unverified,
}

impl Verified {
    pub fn as_str(self) -> &'static str {
        match self {
            Verified::Device => "device",
            Verified::Document => "document",
            Verified::Unverified => "unverified",
        }
    }
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
    /// The value is secondary-side: scaled by the device's transformer ratios.
    pub transformer: Option<Transformer>,
    #[serde(default)]
    pub poll: PollClass,
    pub valid: Option<[f64; 2]>,
    #[serde(default)]
    pub missing: Vec<i64>,
    /// For `bool` in a register: which bit (0 = least significant).
    pub bit: Option<u8>,
    /// For `string`: length in registers.
    pub length: Option<u16>,
    /// In a `sunspec` profile: the SunSpec model the point belongs to...
    pub model: Option<u16>,
    /// ...and its offset from that model's ID register.
    pub model_offset: Option<u16>,
    #[serde(default)]
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_a_short_profile_leaves_out() {
        let f: ProfileFile = toml::from_str(
            "id = \"x\"\n[[points]]\nname = \"p\"\ntable = \"input\"\naddress = 7\ntype = \"u16\"",
        )
        .unwrap();
        assert_eq!((f.max_registers_per_read, f.max_gap), (125, 8));
        assert_eq!(f.pause_between_requests, "0ms");
        let p = &f.points[0];
        assert_eq!(
            (p.table, p.address, p.kind),
            (Table::Input, 7, DataType::U16)
        );
        assert_eq!(p.poll, PollClass::Fast);
        assert!(p.order.is_none() && p.role.is_none() && p.missing.is_empty());
    }

    #[test]
    fn an_unknown_key_is_refused_not_ignored() {
        let e = toml::from_str::<ProfileFile>(
            "id = \"x\"\n[[points]]\nname = \"p\"\ntable = \"input\"\naddress = 7\ntype = \"u16\"\nscael = 0.1",
        )
        .unwrap_err();
        assert!(e.message().contains("scael"), "{e}");
    }
}
