//! One point checked on its own and resolved: its width in registers, its
//! byte order, its scale and scale-factor point, its "not available"
//! patterns masked to its width. What two points may not do together is
//! `overlap`'s concern.
use std::collections::HashMap;
use std::sync::Arc;

use super::file::{PointFile, ProfileFile};
use super::register::{DataType, Order, PollClass, Table, Transformer};
use crate::role::{Role, Sign};

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
    /// In a SunSpec profile: the model and the offset from its ID register,
    /// from which the address is worked out again against the device's chain.
    pub sunspec: Option<(u16, u16)>,
    pub transformer: Option<Transformer>,
}

impl Point {
    pub fn end(&self) -> u32 {
        self.address as u32 + self.width as u32
    }
}

/// Checks point `i` of `file`, reporting each problem through `err` under
/// the point's key; `names` maps every point name to its index.
pub(super) fn check(
    i: usize,
    p: &PointFile,
    file: &ProfileFile,
    names: &HashMap<&str, usize>,
    err: &mut impl FnMut(String, String),
) -> Point {
    let k = |field: &str| key(i, &p.name, field);
    if !is_snake_case(&p.name) {
        err(k("name"), format!("`{}` is not snake_case", p.name));
    }
    let order = p.order.unwrap_or_default();
    let width = match (p.kind, p.table.is_bits()) {
        (DataType::Bool, true) => {
            if p.bit.is_some() {
                err(
                    k("bit"),
                    format!(
                        "a {} is a single bit already; `bit` applies to registers",
                        p.table
                    ),
                );
            }
            if p.order.is_some_and(|o| o != Order::ABCD) {
                err(
                    k("order"),
                    "a coil or discrete input has no byte order".into(),
                );
            }
            1
        }
        (_, true) => {
            err(
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
                Some(b) => err(k("bit"), format!("{b} is outside 0..=15")),
                None => err(k("bit"), "a bool in a register needs `bit` (0..=15)".into()),
            }
            1
        }
        (DataType::String, false) => match p.length {
            Some(n) if (1..=125).contains(&n) => n,
            _ => {
                err(
                    k("length"),
                    "a string needs `length` in registers (1..=125)".into(),
                );
                1
            }
        },
        (t, false) => {
            if t.words() == 1 && matches!(order, Order::CDAB) {
                err(
                    k("order"),
                    "CDAB swaps words, but a 16-bit value has one word; use ABCD or BADC".into(),
                );
            }
            t.words()
        }
    };
    if matches!(p.kind, DataType::String) && p.order.is_some_and(|o| o.words_reversed()) {
        err(
            k("order"),
            "a string is read in register order; use ABCD or BADC".into(),
        );
    }
    if p.length.is_some() && p.kind != DataType::String {
        err(k("length"), "`length` applies only to strings".into());
    }
    if p.address as u32 + width as u32 > 65536 {
        err(k("address"), "the point runs past address 65535".into());
    }
    if let Some(s) = p.scale {
        if !s.is_finite() || s == 0.0 {
            err(k("scale"), format!("{s} is not a usable scale"));
        }
    }
    if !p.kind.is_numeric()
        && (p.scale.is_some() || p.scale_factor.is_some() || p.valid.is_some() || p.offset != 0.0)
    {
        err(
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
            err(k("valid"), format!("[{lo}, {hi}] is empty"));
        }
    }
    let is_power = matches!(p.role, Some(Role::BatteryPower));
    if p.sign.is_some() && !is_power {
        err(
            k("sign"),
            "`sign` applies to the battery_power role only".into(),
        );
    }
    if p.role
        .is_some_and(|r| r != Role::Status && r != Role::Alarm)
        && !p.kind.is_numeric()
    {
        err(k("role"), "this role needs a numeric type".into());
    }
    // Signed registers cannot tell a wrap from a reset; floats never wrap, so
    // for them a decrease is always a reset.
    if p.role.is_some_and(Role::is_counter)
        && !matches!(
            p.kind,
            DataType::U16 | DataType::U32 | DataType::U64 | DataType::F32 | DataType::F64
        )
    {
        err(
            k("type"),
            "an energy counter must be u16, u32, u64 (so a wrap can be told from a reset) or f32/f64".into(),
        );
    }
    if p.transformer.is_some() && !p.kind.is_numeric() {
        err(
            k("transformer"),
            "a transformer ratio scales numbers only".into(),
        );
    }
    let sunspec = match (p.model, p.model_offset) {
        (Some(m), Some(o)) if file.sunspec => Some((m, o)),
        (None, None) if file.sunspec => {
            err(
                k("model"),
                "a `sunspec = true` profile needs `model` and `model_offset` on every point".into(),
            );
            None
        }
        (None, None) => None,
        (m, _) if !file.sunspec => {
            err(
                k(if m.is_some() { "model" } else { "model_offset" }),
                "`model` and `model_offset` apply only in a `sunspec = true` profile".into(),
            );
            None
        }
        _ => {
            err(
                k("model_offset"),
                "`model` and `model_offset` go together".into(),
            );
            None
        }
    };
    if let Some((_, o)) = sunspec {
        if o < 2 {
            err(
                k("model_offset"),
                "offsets 0 and 1 are the model's own header (ID, length)".into(),
            );
        }
    }
    let scale_factor = p.scale_factor.as_ref().and_then(|sf| match names.get(sf.as_str()) {
        None => {
            err(k("scale_factor"), format!("no point named `{sf}`"));
            None
        }
        Some(&j) => {
            let q = &file.points[j];
            if !matches!(q.kind, DataType::I16 | DataType::U16) {
                err(k("scale_factor"), format!("`{sf}` must be i16 or u16"));
            }
            if q.table != p.table {
                err(k("scale_factor"), format!("`{sf}` is in the {} table; a value and its scale factor must share a table to be read in one request", q.table));
            }
            if q.scale_factor.is_some() {
                err(k("scale_factor"), format!("`{sf}` has a scale factor of its own"));
            }
            Some(j)
        }
    });
    let mask = if width >= 4 {
        u64::MAX
    } else {
        (1u64 << (16 * width as u32)) - 1
    };
    Point {
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
        sunspec,
        transformer: p.transformer,
    }
}

pub(super) fn key(i: usize, name: &str, field: &str) -> String {
    format!("points[{i}] ({name}).{field}")
}

fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the last point of a profile whose points are `points` (TOML
    /// array-of-tables text); the point and the problems found.
    fn checked(points: &str) -> (Point, Vec<String>) {
        let file: ProfileFile = toml::from_str(&format!("id = \"t\"\n{points}")).unwrap();
        let names: HashMap<&str, usize> = file
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        let mut errs = Vec::new();
        let i = file.points.len() - 1;
        let p = check(i, &file.points[i], &file, &names, &mut |k, m| {
            errs.push(format!("{k}: {m}"))
        });
        (p, errs)
    }

    fn one(fields: &str) -> String {
        format!("[[points]]\nname = \"p\"\ntable = \"holding\"\naddress = 100\n{fields}\n")
    }

    #[test]
    fn widths_come_from_the_type_or_the_string_length() {
        for (fields, width) in [
            ("type = \"u16\"", 1),
            ("type = \"f32\"", 2),
            ("type = \"i64\"\norder = \"DCBA\"", 4),
            ("type = \"string\"\nlength = 10", 10),
            ("type = \"bool\"\nbit = 15", 1),
        ] {
            let (p, errs) = checked(&one(fields));
            assert!(errs.is_empty(), "{fields}: {errs:?}");
            assert_eq!(p.width, width, "{fields}");
            assert_eq!(p.end(), 100 + width as u32);
        }
    }

    #[test]
    fn missing_patterns_are_masked_to_the_points_width_and_defaults_fill_in() {
        let (p, _) = checked(&one("type = \"i16\"\nmissing = [-32768, -1]"));
        assert_eq!(
            p.missing,
            [0x8000, 0xFFFF],
            "as the raw register holds them"
        );
        assert_eq!((p.scale, p.offset, p.order), (1.0, 0.0, Order::ABCD));
        assert_eq!(p.sign, Sign::DischargePositive);
        let (p, _) = checked(&one("type = \"u32\"\nmissing = [-1]"));
        assert_eq!(p.missing, [0xFFFF_FFFF]);
    }

    #[test]
    fn shapes_a_decoder_cannot_read_are_refused_by_key() {
        for (fields, key, says) in [
            ("type = \"bool\"", "bit", "needs `bit`"),
            ("type = \"bool\"\nbit = 16", "bit", "outside 0..=15"),
            ("type = \"u16\"\norder = \"CDAB\"", "order", "one word"),
            ("type = \"string\"", "length", "needs `length`"),
            (
                "type = \"string\"\nlength = 4\norder = \"CDAB\"",
                "order",
                "register order",
            ),
            ("type = \"u16\"\nlength = 4", "length", "only to strings"),
            ("type = \"u16\"\nscale = 0", "scale", "not a usable scale"),
            (
                "type = \"bool\"\nbit = 1\nscale = 2",
                "type",
                "numeric type",
            ),
            ("type = \"u16\"\nvalid = [5, 1]", "valid", "is empty"),
            (
                "type = \"u16\"\nsign = \"charge_positive\"",
                "sign",
                "battery_power",
            ),
            (
                "type = \"i32\"\nrole = \"charge_energy_total\"",
                "type",
                "u16, u32, u64",
            ),
            (
                "type = \"string\"\nlength = 2\nrole = \"soc\"",
                "role",
                "numeric",
            ),
        ] {
            let (_, errs) = checked(&one(fields));
            let want = format!("points[0] (p).{key}: ");
            assert!(
                errs.iter()
                    .any(|e| e.starts_with(&want) && e.contains(says)),
                "{fields}: want {want}..{says} in {errs:?}"
            );
        }
        let (_, errs) =
            checked("[[points]]\nname = \"c\"\ntable = \"coil\"\naddress = 1\ntype = \"u16\"\n");
        assert!(errs[0].contains("only type = \"bool\""), "{errs:?}");
        let (_, errs) = checked(
            "[[points]]\nname = \"far\"\ntable = \"input\"\naddress = 65535\ntype = \"u32\"\n",
        );
        assert!(errs[0].contains("past address 65535"), "{errs:?}");
        let (_, errs) = checked(&one("type = \"u16\"").replace("\"p\"", "\"Power\""));
        assert!(errs[0].contains("snake_case"), "{errs:?}");
    }

    #[test]
    fn a_scale_factor_is_a_16_bit_point_in_the_same_table() {
        let sf = "[[points]]\nname = \"w_sf\"\ntable = \"holding\"\naddress = 10\ntype = \"i16\"\n";
        let (p, errs) = checked(&format!(
            "{sf}{}",
            one("type = \"u32\"\nscale_factor = \"w_sf\"")
        ));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(p.scale_factor, Some(0));
        for (sf_point, says) in [
            (sf.replace("holding", "input"), "share a table"),
            (sf.replace("i16", "u32"), "must be i16 or u16"),
            (String::new(), "no point named `w_sf`"),
        ] {
            let (_, errs) = checked(&format!(
                "{sf_point}{}",
                one("type = \"u32\"\nscale_factor = \"w_sf\"")
            ));
            assert!(errs.iter().any(|e| e.contains(says)), "{says}: {errs:?}");
        }
    }
}
