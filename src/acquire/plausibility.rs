//! The classic commissioning mistakes, caught while someone is still on
//! site: a scale off by ten (SOC 500 %), a register map for another model
//! (power beyond the converter's rating), a counter going backwards, and a
//! 32-bit value read with its words swapped. The last shows between two
//! reads: a counter's low word moves first, so a "high" word that moves
//! while the "low" one stands still was read from the wrong register.
use super::profile::{DataType, Point, Role};

/// What a read can be judged against besides the point itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// The battery's rated power, when the site is known.
    pub rated_kw: Option<f64>,
    /// The grid connection's limit, when the site is known.
    pub max_grid_kw: Option<f64>,
}

/// Why one decoded value cannot be right for its role, if it cannot.
pub fn implausible(point: &Point, value: f64, limits: &Limits) -> Option<String> {
    // No meter or converter quantity sits this far from 1 in any unit; a
    // float read with its words swapped usually lands out here.
    let raw_float = value / point.scale;
    if point.kind == DataType::F32 && raw_float != 0.0 && !(1e-12..1e10).contains(&raw_float.abs())
    {
        return Some(format!(
            "f32 {raw_float:e} is out of any physical range: its word order is probably wrong (try order = \"{}\")",
            if point.order.words_reversed() { "ABCD" } else { "CDAB" }
        ));
    }
    let role = point.role?;
    let outside = |lo: f64, hi: f64, what: &str| {
        (!(lo..=hi).contains(&value)).then(|| format!("{what} {value} outside {lo}-{hi}"))
    };
    match role {
        Role::Soc | Role::Soh => outside(0.0, 100.0, "percentage"),
        Role::CellVoltageMax | Role::CellVoltageMin => outside(1.0, 5.0, "cell voltage (V)"),
        Role::CellTempMax | Role::CellTempMin => outside(-40.0, 100.0, "cell temperature (C)"),
        Role::BatteryPower => limits.rated_kw.and_then(|r| {
            (value.abs() > 1.5 * r).then(|| format!("{value} kW is beyond 1.5 x the rated {r} kW"))
        }),
        Role::GridPower | Role::SiteLoadPower => limits.max_grid_kw.and_then(|g| {
            (value.abs() > g).then(|| format!("{value} kW is beyond the site's {g} kW"))
        }),
        r if r.is_counter() => (value < 0.0).then(|| format!("a counter at {value}")),
        _ => None,
    }
}

/// Two reads of one point, in wire order: what they say about it.
pub fn between_reads(point: &Point, first: &[u16], second: &[u16]) -> Option<String> {
    if first.len() != second.len() {
        return None;
    }
    if point.width == 2 && point.kind.is_integer() {
        let (hi, lo) = if point.order.words_reversed() {
            (1, 0)
        } else {
            (0, 1)
        };
        if first[hi] != second[hi] && first[lo] == second[lo] {
            return Some(format!(
                "word order looks swapped: the high word moved ({:04x} -> {:04x}) while the low word stood at {:04x}",
                first[hi], second[hi], first[lo]
            ));
        }
    }
    let is_counter = point.role.is_some_and(Role::is_counter);
    if is_counter && point.kind.is_integer() && point.width <= 4 {
        let value = |w: &[u16]| super::decode::assemble(w, point.order);
        let (a, b) = (value(first), value(second));
        if b < a {
            return Some(format!(
                "the counter went down between reads ({a} -> {b} counts): reset, rollover, or the wrong register"
            ));
        }
    }
    if is_counter && matches!(point.kind, DataType::F32 | DataType::F64) {
        let value = |w: &[u16]| float_of(point, w);
        if let (Some(a), Some(b)) = (value(first), value(second)) {
            if b < a {
                return Some(format!(
                    "the counter went down between reads ({a} -> {b}): reset, or the wrong register"
                ));
            }
        }
    }
    None
}

fn float_of(point: &Point, words: &[u16]) -> Option<f64> {
    let raw = super::decode::assemble(words, point.order);
    match point.kind {
        DataType::F32 => Some(f32::from_bits(raw as u32) as f64),
        DataType::F64 => Some(f64::from_bits(raw)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquire::profile::Profile;

    fn point(text: &str) -> Point {
        let p = Profile::parse(
            std::path::Path::new("t.toml"),
            &format!(
                "id = \"t\"\n[[points]]\nname = \"p\"\ntable = \"holding\"\naddress = 0\n{text}"
            ),
        )
        .unwrap();
        p.points[0].clone()
    }

    #[test]
    fn values_wrong_for_their_role_are_named() {
        let soc = point("type = \"u16\"\nrole = \"soc\"");
        assert_eq!(
            implausible(&soc, 500.0, &Limits::default()).as_deref(),
            Some("percentage 500 outside 0-100")
        );
        assert_eq!(implausible(&soc, 55.0, &Limits::default()), None);
        let power = point("type = \"f32\"\nrole = \"battery_power\"");
        let limits = Limits {
            rated_kw: Some(1000.0),
            max_grid_kw: None,
        };
        assert!(implausible(&power, -1400.0, &limits).is_none());
        assert!(implausible(&power, 15_000.0, &limits)
            .unwrap()
            .contains("rated 1000 kW"));
        assert!(
            implausible(&power, 15_000.0, &Limits::default()).is_none(),
            "no rating known"
        );
    }

    #[test]
    fn a_high_word_moving_alone_means_swapped_words() {
        let counter = point("type = \"u32\"\nrole = \"charge_energy_total\"");
        // Read as ABCD, the device sends CDAB: the "high" word is its low one.
        let msg = between_reads(&counter, &[0x1234, 0x0001], &[0x1240, 0x0001]).unwrap();
        assert!(msg.contains("word order looks swapped"), "{msg}");
        // An honest counter: its low word moves.
        assert_eq!(
            between_reads(&counter, &[0x0001, 0x1234], &[0x0001, 0x1240]),
            None
        );
        let down = between_reads(&counter, &[0x0001, 0x1234], &[0x0001, 0x1000]).unwrap();
        assert!(down.contains("went down"), "{down}");
        let cdab = point("type = \"u32\"\norder = \"CDAB\"\nrole = \"charge_energy_total\"");
        assert_eq!(
            between_reads(&cdab, &[0x1234, 0x0001], &[0x1240, 0x0001]),
            None
        );
    }

    #[test]
    fn float_counters_going_down_and_floats_read_with_swapped_words() {
        let kwh = point("type = \"f32\"\nrole = \"grid_import_energy_total\"");
        let words = |x: f32| {
            let b = x.to_bits();
            [(b >> 16) as u16, b as u16]
        };
        assert_eq!(between_reads(&kwh, &words(1234.5), &words(1234.75)), None);
        let down = between_reads(&kwh, &words(1234.5), &words(12.0)).unwrap();
        assert!(down.contains("1234.5 -> 12"), "{down}");
        // 230 V as f32 is 0x4366_0000; read CDAB it is a subnormal near 2e-41.
        let volts = point("type = \"f32\"\norder = \"CDAB\"");
        let swapped = f32::from_bits(0x0000_4366) as f64;
        let msg = implausible(&volts, swapped, &Limits::default()).unwrap();
        assert!(msg.contains("try order = \"ABCD\""), "{msg}");
        assert_eq!(implausible(&volts, 230.0, &Limits::default()), None);
        assert_eq!(implausible(&volts, 0.0, &Limits::default()), None);
    }
}
