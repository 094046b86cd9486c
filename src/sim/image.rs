//! Writing values into a register image, as a device would: the inverse of
//! `acquire::decode`, driven by the same profile so the simulator and its
//! bundled profiles cannot drift apart. (Decoding is tested against registers
//! computed by hand, so a mistake made on both sides would still be caught.)
use crate::acquire::profile::{DataType, Point, Profile, Table};

#[derive(Debug, Clone)]
pub enum SimValue {
    Num(f64),
    /// The register pattern itself (counters, whose wrap must be exact).
    Raw(u64),
    Bool(bool),
    Text(String),
}

#[derive(Debug, Clone, Default)]
pub struct UnitImage {
    pub holding: Vec<u16>,
    pub input: Vec<u16>,
    pub coils: Vec<bool>,
    pub discrete: Vec<bool>,
}

impl UnitImage {
    pub fn words(&self, table: Table) -> &[u16] {
        match table {
            Table::Input => &self.input,
            _ => &self.holding,
        }
    }
    pub fn bits(&self, table: Table) -> &[bool] {
        match table {
            Table::Coil => &self.coils,
            _ => &self.discrete,
        }
    }
}

/// Words in wire order for `raw` spread over `n` registers in `order`.
pub fn words_of(raw: u64, n: usize, order: crate::acquire::profile::Order) -> Vec<u16> {
    let mut w: Vec<u16> = (0..n)
        .map(|i| (raw >> (16 * (n - 1 - i))) as u16)
        .map(|x| {
            if order.bytes_swapped() {
                x.swap_bytes()
            } else {
                x
            }
        })
        .collect();
    if order.words_reversed() {
        w.reverse();
    }
    w
}

/// A counter of `amount` (in the role's unit) as the point's register
/// pattern: integer counters wrap at their width, as a device's do.
pub fn counter(p: &Point, amount: f64) -> SimValue {
    if matches!(p.kind, DataType::F32 | DataType::F64) {
        return SimValue::Num(amount);
    }
    let counts = ((amount - p.offset) / p.scale).max(0.0) as u64;
    let bits = 16 * p.width as u32;
    SimValue::Raw(if bits >= 64 {
        counts
    } else {
        counts & ((1u64 << bits) - 1)
    })
}

fn raw_of(kind: DataType, v: f64) -> u64 {
    let r = v.round();
    match kind {
        DataType::U16 => r.clamp(0.0, u16::MAX as f64) as u64,
        DataType::I16 => r.clamp(i16::MIN as f64, i16::MAX as f64) as i16 as u16 as u64,
        DataType::U32 => r.clamp(0.0, u32::MAX as f64) as u64,
        DataType::I32 => r.clamp(i32::MIN as f64, i32::MAX as f64) as i32 as u32 as u64,
        DataType::U64 => r.max(0.0) as u64,
        DataType::I64 => r as i64 as u64,
        DataType::F32 => (v as f32).to_bits() as u64,
        DataType::F64 => v.to_bits(),
        DataType::Bool | DataType::String => 0,
    }
}

/// Builds the image of one unit from `value_of(point)`; points without a value read 0.
pub fn build(profile: &Profile, value_of: impl Fn(&Point) -> Option<SimValue>) -> UnitImage {
    let mut img = UnitImage::default();
    for p in &profile.points {
        let end = p.end() as usize;
        match p.table {
            Table::Holding if img.holding.len() < end => img.holding.resize(end, 0),
            Table::Input if img.input.len() < end => img.input.resize(end, 0),
            Table::Coil if img.coils.len() < end => img.coils.resize(end, false),
            Table::Discrete if img.discrete.len() < end => img.discrete.resize(end, false),
            _ => {}
        }
    }
    for p in &profile.points {
        let Some(v) = value_of(p) else { continue };
        let a = p.address as usize;
        if p.table.is_bits() {
            let bits = if p.table == Table::Coil {
                &mut img.coils
            } else {
                &mut img.discrete
            };
            bits[a] = matches!(v, SimValue::Bool(true));
            continue;
        }
        let regs = if p.table == Table::Input {
            &mut img.input
        } else {
            &mut img.holding
        };
        let w = p.width as usize;
        match (p.kind, v) {
            (DataType::Bool, SimValue::Bool(b)) => {
                let bit = p.bit.unwrap_or(0);
                let cur = regs[a];
                regs[a] = if b {
                    cur | (1 << bit)
                } else {
                    cur & !(1 << bit)
                };
            }
            (DataType::String, SimValue::Text(s)) => {
                let mut bytes = s.into_bytes();
                bytes.resize(w * 2, 0);
                for i in 0..w {
                    let x = u16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
                    regs[a + i] = if p.order.bytes_swapped() {
                        x.swap_bytes()
                    } else {
                        x
                    };
                }
            }
            (kind, SimValue::Raw(raw)) => {
                let mask = if w >= 4 {
                    u64::MAX
                } else {
                    (1u64 << (16 * w)) - 1
                };
                regs[a..a + w].copy_from_slice(&words_of(raw & mask, w, p.order));
                let _ = kind;
            }
            (kind, SimValue::Num(x)) => {
                let scale = match p.scale_factor {
                    Some(j) => match value_of(&profile.points[j]) {
                        Some(SimValue::Num(e)) => p.scale * 10f64.powi(e as i32),
                        _ => p.scale,
                    },
                    None => p.scale,
                };
                let scaled = if kind == DataType::F32 || kind == DataType::F64 {
                    (x - p.offset) / scale
                } else {
                    ((x - p.offset) / scale).round()
                };
                regs[a..a + w].copy_from_slice(&words_of(raw_of(kind, scaled), w, p.order));
            }
            _ => {}
        }
    }
    img
}
