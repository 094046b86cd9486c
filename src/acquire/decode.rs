//! Turning raw registers and bits into typed values: byte and word order,
//! signedness, scale, offset, SunSpec scale factors, `missing` sentinels and
//! `valid` ranges. Pure functions; every type and order is unit-tested against
//! registers computed by hand.
use std::sync::Arc;

use super::planner::Request;
use super::profile::{DataType, Order, Point, Profile};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(f64),
    Bool(bool),
    Text(Arc<str>),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(v) => Some(*v),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Text(_) => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Num(v) => write!(f, "{v}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// What one point decoded to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// `raw` is the unsigned bit pattern as read (for counters: wrap detection).
    Value { value: Value, raw: u64, valid: bool },
    /// A `missing` sentinel, a NaN, or a scale factor that is itself missing.
    Missing,
}

/// Registers as the wire carries them, in the order the profile declares.
pub fn assemble(words: &[u16], order: Order) -> u64 {
    let mut out = 0u64;
    let n = words.len();
    for i in 0..n {
        let w = if order.words_reversed() {
            words[n - 1 - i]
        } else {
            words[i]
        };
        let w = if order.bytes_swapped() {
            w.swap_bytes()
        } else {
            w
        };
        out = (out << 16) | w as u64;
    }
    out
}

fn string_of(words: &[u16], order: Order) -> Arc<str> {
    let mut bytes = Vec::with_capacity(words.len() * 2);
    for &w in words {
        let w = if order.bytes_swapped() {
            w.swap_bytes()
        } else {
            w
        };
        bytes.extend_from_slice(&w.to_be_bytes());
    }
    let s = String::from_utf8_lossy(&bytes);
    s.trim_end_matches(['\0', ' '])
        .trim_start_matches('\0')
        .into()
}

/// Decodes one register-table point from exactly `point.width` words.
/// `sf` is the scale-factor point's raw register, when the point names one.
pub fn decode_words(p: &Point, words: &[u16], sf: Option<Option<i16>>) -> Decoded {
    debug_assert_eq!(words.len(), p.width as usize);
    if p.kind == DataType::String {
        let s = string_of(words, p.order);
        return Decoded::Value {
            value: Value::Text(s),
            raw: 0,
            valid: true,
        };
    }
    let raw = assemble(words, p.order);
    if p.kind == DataType::Bool {
        let bit = p.bit.unwrap_or(0);
        return Decoded::Value {
            value: Value::Bool(raw >> bit & 1 == 1),
            raw,
            valid: true,
        };
    }
    if p.missing.contains(&raw) {
        return Decoded::Missing;
    }
    let number = match p.kind {
        DataType::U16 | DataType::U32 | DataType::U64 => raw as f64,
        DataType::I16 => raw as u16 as i16 as f64,
        DataType::I32 => raw as u32 as i32 as f64,
        DataType::I64 => raw as i64 as f64,
        DataType::F32 => f32_decimal(f32::from_bits(raw as u32)),
        DataType::F64 => f64::from_bits(raw),
        DataType::Bool | DataType::String => unreachable!("handled above"),
    };
    if !number.is_finite() {
        return Decoded::Missing;
    }
    let scale = match sf {
        None => p.scale,
        Some(None) => return Decoded::Missing,
        // `scale` beside a scale factor converts the unit (a SunSpec Wh counter
        // read as kWh has scale 0.001): both apply.
        Some(Some(e)) => p.scale * 10f64.powi(e as i32),
    };
    // Scales like 0.1 are not exact in binary: -2624 x 0.1 gives -262.40000000000003,
    // while -2624 / 10 gives the -262.4 an operator expects to see published.
    let inv = 1.0 / scale;
    let scaled = if scale < 1.0 && (inv - inv.round()).abs() < 1e-9 * inv {
        number / inv.round()
    } else {
        number * scale
    };
    let value = scaled + p.offset;
    let valid = p.valid.is_none_or(|(lo, hi)| lo <= value && value <= hi);
    Decoded::Value {
        value: Value::Num(value),
        raw,
        valid,
    }
}

/// An f32 as the decimal its device meant: the shortest digits that read
/// back as the same f32. Widened bit for bit, 2401.7507 would be published as
/// 2401.750732421875, digits the register never held.
fn f32_decimal(x: f32) -> f64 {
    if !x.is_finite() {
        return x as f64;
    }
    ryu::Buffer::new()
        .format_finite(x)
        .parse()
        .unwrap_or(x as f64)
}

/// The raw scale-factor exponent, or None when the device says "not implemented".
pub fn scale_factor_of(p: &Point, word: u16) -> Option<i16> {
    let raw = if p.order.bytes_swapped() {
        word.swap_bytes()
    } else {
        word
    };
    if p.missing.contains(&(raw as u64)) || raw == 0x8000 {
        return None;
    }
    let e = raw as i16;
    // Beyond ±10 no real device means it; treat as garbage rather than scale by 1e30.
    (-10..=10).contains(&e).then_some(e)
}

/// A reply to one planned request.
#[derive(Debug, Clone)]
pub enum Reply {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

/// Decodes every point a request covers, in point order, calling `emit(index, decoded)`.
pub fn decode_reply(
    profile: &Profile,
    req: &Request,
    reply: &Reply,
    mut emit: impl FnMut(usize, Decoded),
) {
    for &i in &req.points {
        let p = &profile.points[i];
        let off = (p.address - req.start) as usize;
        let decoded = match reply {
            Reply::Bits(bits) => match bits.get(off) {
                Some(&b) => Decoded::Value {
                    value: Value::Bool(b),
                    raw: b as u64,
                    valid: true,
                },
                None => Decoded::Missing,
            },
            Reply::Words(words) => match words.get(off..off + p.width as usize) {
                None => Decoded::Missing,
                Some(w) => {
                    let sf = p.scale_factor.map(|j| {
                        let q = &profile.points[j];
                        let o = q.address.wrapping_sub(req.start) as usize;
                        words.get(o).and_then(|&raw| scale_factor_of(q, raw))
                    });
                    decode_words(p, w, sf)
                }
            },
        };
        emit(i, decoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquire::profile::{PollClass, Sign, Table};

    fn point(kind: DataType, order: Order) -> Point {
        let width = match kind {
            DataType::String => 2,
            k => k.words(),
        };
        Point {
            name: "p".into(),
            table: Table::Holding,
            address: 0,
            kind,
            order,
            width,
            scale: 1.0,
            scale_factor: None,
            offset: 0.0,
            unit: None,
            role: None,
            sign: Sign::DischargePositive,
            poll: PollClass::Fast,
            valid: None,
            missing: vec![],
            bit: None,
            is_scale_factor: false,
            sunspec: None,
            transformer: None,
        }
    }

    fn num(p: &Point, words: &[u16]) -> f64 {
        match decode_words(p, words, None) {
            Decoded::Value {
                value: Value::Num(v),
                ..
            } => v,
            other => panic!("expected a number, got {other:?}"),
        }
    }

    #[test]
    fn sixteen_bit() {
        assert_eq!(num(&point(DataType::U16, Order::ABCD), &[0xFFD5]), 65493.0);
        // SunGather #17: the same register is -43 when signed.
        assert_eq!(num(&point(DataType::I16, Order::ABCD), &[0xFFD5]), -43.0);
        assert_eq!(
            num(&point(DataType::U16, Order::BADC), &[0x3412]),
            0x1234 as f64
        );
        assert_eq!(num(&point(DataType::I16, Order::DCBA), &[0xD5FF]), -43.0);
    }

    #[test]
    fn thirty_two_bit_orders() {
        // 0x12345678 = 305419896, laid out four ways.
        let v = 305_419_896.0;
        assert_eq!(
            num(&point(DataType::U32, Order::ABCD), &[0x1234, 0x5678]),
            v
        );
        assert_eq!(
            num(&point(DataType::U32, Order::CDAB), &[0x5678, 0x1234]),
            v
        );
        assert_eq!(
            num(&point(DataType::U32, Order::BADC), &[0x3412, 0x7856]),
            v
        );
        assert_eq!(
            num(&point(DataType::U32, Order::DCBA), &[0x7856, 0x3412]),
            v
        );
        // -2 as i32 = 0xFFFFFFFE
        assert_eq!(
            num(&point(DataType::I32, Order::ABCD), &[0xFFFF, 0xFFFE]),
            -2.0
        );
        assert_eq!(
            num(&point(DataType::I32, Order::CDAB), &[0xFFFE, 0xFFFF]),
            -2.0
        );
    }

    #[test]
    fn floats() {
        // 123.456f32 = 0x42F6E979: read as the decimal the device meant, not
        // as the f32 widened bit for bit (123.45600128173828).
        let f = 123.456;
        assert_ne!(123.456f32 as f64, f);
        assert_eq!(
            num(&point(DataType::F32, Order::ABCD), &[0x42F6, 0xE979]),
            f
        );
        assert_eq!(
            num(&point(DataType::F32, Order::CDAB), &[0xE979, 0x42F6]),
            f
        );
        assert_eq!(
            num(&point(DataType::F32, Order::BADC), &[0xF642, 0x79E9]),
            f
        );
        assert_eq!(
            num(&point(DataType::F32, Order::DCBA), &[0x79E9, 0xF642]),
            f
        );
        let scaled = |scale: f64, w: [u16; 2]| {
            let mut p = point(DataType::F32, Order::ABCD);
            p.scale = scale;
            num(&p, &w)
        };
        // 2401.7507 A and 682497.4 W (read as kW): the digits sent, and no more.
        let bits = |x: f32| [(x.to_bits() >> 16) as u16, x.to_bits() as u16];
        assert_eq!(scaled(1.0, bits(2401.7507)).to_string(), "2401.7507");
        assert_eq!(scaled(0.001, bits(682497.4)).to_string(), "682.4974");
        // -1.5f64 = 0xBFF8000000000000
        let w = [0xBFF8, 0, 0, 0];
        assert_eq!(num(&point(DataType::F64, Order::ABCD), &w), -1.5);
        assert_eq!(
            num(&point(DataType::F64, Order::CDAB), &[0, 0, 0, 0xBFF8]),
            -1.5
        );
        assert_eq!(
            num(&point(DataType::F64, Order::DCBA), &[0, 0, 0, 0xF8BF]),
            -1.5
        );
        assert_eq!(
            num(&point(DataType::F64, Order::BADC), &[0xF8BF, 0, 0, 0]),
            -1.5
        );
        // NaN is "not available", never a number downstream.
        assert_eq!(
            decode_words(&point(DataType::F32, Order::ABCD), &[0x7FC0, 0], None),
            Decoded::Missing
        );
    }

    #[test]
    fn sixty_four_bit_integers() {
        let w = [0x0001, 0x0002, 0x0003, 0x0004];
        let v = 0x0001_0002_0003_0004u64 as f64;
        assert_eq!(num(&point(DataType::U64, Order::ABCD), &w), v);
        assert_eq!(num(&point(DataType::U64, Order::CDAB), &[4, 3, 2, 1]), v);
        assert_eq!(
            num(
                &point(DataType::U64, Order::BADC),
                &[0x0100, 0x0200, 0x0300, 0x0400]
            ),
            v
        );
        assert_eq!(
            num(
                &point(DataType::U64, Order::DCBA),
                &[0x0400, 0x0300, 0x0200, 0x0100]
            ),
            v
        );
        assert_eq!(
            num(
                &point(DataType::I64, Order::ABCD),
                &[0xFFFF, 0xFFFF, 0xFFFF, 0xFFFD]
            ),
            -3.0
        );
    }

    #[test]
    fn scale_offset_valid_missing() {
        let mut p = point(DataType::I32, Order::ABCD);
        p.scale = 0.1;
        p.offset = -1.0;
        p.valid = Some((-100.0, 100.0));
        p.missing = vec![0x8000_0000];
        // 0x000001F4 = 500 -> 500 * 0.1 - 1 = 49
        match decode_words(&p, &[0, 500], None) {
            Decoded::Value {
                value: Value::Num(v),
                valid,
                raw,
            } => {
                assert!((v - 49.0).abs() < 1e-9);
                assert!(valid);
                assert_eq!(raw, 500);
            }
            o => panic!("{o:?}"),
        }
        match decode_words(&p, &[0, 5000], None) {
            Decoded::Value { valid, .. } => assert!(!valid, "499 kW is outside [-100, 100]"),
            o => panic!("{o:?}"),
        }
        assert_eq!(decode_words(&p, &[0x8000, 0], None), Decoded::Missing);
    }

    #[test]
    fn decimal_scales_give_the_decimal_value() {
        let mut p = point(DataType::I32, Order::ABCD);
        p.scale = 0.1;
        assert_eq!(num(&p, &[0xFFFF, 0xF5C0]), -262.4);
        p.scale = 0.001;
        assert_eq!(num(&p, &[0, 71]), 0.071);
    }

    #[test]
    fn sunspec_scale_factor() {
        let mut sf = point(DataType::I16, Order::ABCD);
        sf.is_scale_factor = true;
        assert_eq!(scale_factor_of(&sf, 0xFFFE), Some(-2));
        assert_eq!(scale_factor_of(&sf, 0x8000), None);
        let p = point(DataType::I16, Order::ABCD);
        match decode_words(&p, &[12345], Some(Some(-2))) {
            Decoded::Value {
                value: Value::Num(v),
                ..
            } => assert!((v - 123.45).abs() < 1e-9),
            o => panic!("{o:?}"),
        }
        assert_eq!(decode_words(&p, &[12345], Some(None)), Decoded::Missing);
    }

    #[test]
    fn bits_and_strings() {
        let mut b = point(DataType::Bool, Order::ABCD);
        b.bit = Some(3);
        assert_eq!(
            decode_words(&b, &[0b1000], None),
            Decoded::Value {
                value: Value::Bool(true),
                raw: 8,
                valid: true
            }
        );
        let s = point(DataType::String, Order::ABCD);
        // "AB" "C\0"
        match decode_words(&s, &[0x4142, 0x4300], None) {
            Decoded::Value {
                value: Value::Text(t),
                ..
            } => assert_eq!(&*t, "ABC"),
            o => panic!("{o:?}"),
        }
        let s = point(DataType::String, Order::BADC);
        match decode_words(&s, &[0x4241, 0x0043], None) {
            Decoded::Value {
                value: Value::Text(t),
                ..
            } => assert_eq!(&*t, "ABC"),
            o => panic!("{o:?}"),
        }
    }
}
