//! How a device holds a value: which Modbus table, which data type (and so
//! how many registers), which byte and word order, how often it is read.
use std::fmt;

use serde::Deserialize;

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

    pub fn is_integer(self) -> bool {
        self.is_numeric() && !matches!(self, DataType::F32 | DataType::F64)
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

/// Which instrument transformers stand between the conductor and a meter's
/// input: its registers then hold secondary-side values, and the primary is
/// the register times the installation's ratio (a device's `ct_ratio`, `pt_ratio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transformer {
    Ct,
    Pt,
    CtPt,
}

impl Transformer {
    pub fn factor(self, ct: f64, pt: f64) -> f64 {
        match self {
            Transformer::Ct => ct,
            Transformer::Pt => pt,
            Transformer::CtPt => ct * pt,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollClass {
    #[default]
    Fast,
    Slow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_know_their_function_code_unit_and_read_limit() {
        assert_eq!(
            [Table::Coil, Table::Discrete, Table::Holding, Table::Input].map(Table::function_code),
            [1, 2, 3, 4]
        );
        assert!(Table::Coil.is_bits() && !Table::Input.is_bits());
        // Modbus application protocol v1.1b3, 6.1-6.4: 2000 bits, 125 registers.
        assert_eq!(Table::Discrete.protocol_max(), 2000);
        assert_eq!(Table::Holding.protocol_max(), 125);
        assert_eq!(Table::Input.to_string(), "input");
    }

    #[test]
    fn widths_and_orders() {
        assert_eq!(DataType::I16.words(), 1);
        assert_eq!(DataType::F32.words(), 2);
        assert_eq!(DataType::U64.words(), 4);
        assert!(DataType::F64.is_numeric() && !DataType::Bool.is_numeric());
        let flags = |o: Order| (o.words_reversed(), o.bytes_swapped());
        assert_eq!(flags(Order::ABCD), (false, false));
        assert_eq!(flags(Order::CDAB), (true, false));
        assert_eq!(flags(Order::BADC), (false, true));
        assert_eq!(flags(Order::DCBA), (true, true));
    }
}
