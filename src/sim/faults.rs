//! Faults the simulator can be told to show, at start (`simulate` options) or
//! while running (tests flip them): slow replies, silent units, exception
//! codes, dropped connections, counter resets and garbage values.
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

/// Unit 0 in a `*_unit` field means "every unit".
#[derive(Debug, Default)]
pub struct Faults {
    pub slow_ms: AtomicU64,
    pub slow_unit: AtomicU8,
    /// A unit that never answers (as a dead device behind a gateway); 0 = none.
    pub silent_unit: AtomicU8,
    pub exception_unit: AtomicU8,
    /// Modbus exception code to answer `exception_unit` with; 0 = none.
    pub exception_code: AtomicU8,
    /// Close the connection after every N-th request; 0 = never.
    pub drop_every: AtomicU32,
    /// Replace one register with a random word in every N-th reply; 0 = never.
    pub garbage_every: AtomicU32,
    /// Zero the PCS energy counters at the next request.
    pub reset_counters: AtomicBool,
}

fn unit_matches(filter: u8, unit: u8) -> bool {
    filter == 0 || filter == unit
}

impl Faults {
    pub fn delay_for(&self, unit: u8) -> Option<std::time::Duration> {
        let ms = self.slow_ms.load(Relaxed);
        (ms > 0 && unit_matches(self.slow_unit.load(Relaxed), unit))
            .then(|| std::time::Duration::from_millis(ms))
    }

    pub fn is_silent(&self, unit: u8) -> bool {
        let s = self.silent_unit.load(Relaxed);
        s != 0 && s == unit
    }

    pub fn exception_for(&self, unit: u8) -> Option<u8> {
        let code = self.exception_code.load(Relaxed);
        (code != 0 && unit_matches(self.exception_unit.load(Relaxed), unit)).then_some(code)
    }

    pub fn set_slow(&self, unit: u8, ms: u64) {
        self.slow_unit.store(unit, Relaxed);
        self.slow_ms.store(ms, Relaxed);
    }
}
