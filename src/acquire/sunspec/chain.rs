//! Finding a SunSpec device's models: the "SunS" marker at one of the three
//! base addresses the specification allows, then the chain of model headers
//! (ID, length) up to the 0xFFFF end marker. Firmware updates move models, so
//! the chain is read from the device rather than trusted from a document.
use std::future::Future;

/// "SunS" as two big-endian registers.
pub const MARKER: [u16; 2] = [0x5375, 0x6E53];
/// Where the marker may sit (holding registers), in the order devices most often use.
pub const BASES: [u16; 3] = [40000, 0, 50000];
/// The end of the chain: ID 0xFFFF (its length register is 0).
pub const END: u16 = 0xFFFF;
/// No real device has more; a chain this long is a device answering garbage.
const MAX_MODELS: usize = 100;

/// One model in a device's chain: its ID register's address and the length
/// its header declares (registers after the two header registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: u16,
    pub address: u16,
    pub length: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub base: u16,
    pub models: Vec<Entry>,
}

impl Chain {
    /// `ids` laid end to end from `base`, each as long as the standard says:
    /// what a device presenting just these models looks like.
    pub fn standard(base: u16, ids: &[u16]) -> Chain {
        let mut at = base + 2;
        let mut models = Vec::new();
        for &id in ids {
            let length = super::model::model(id).map_or(0, |m| m.length);
            models.push(Entry {
                id,
                address: at,
                length,
            });
            at += 2 + length;
        }
        Chain { base, models }
    }

    /// The first instance of a model: the one a profile's points refer to.
    pub fn first(&self, id: u16) -> Option<&Entry> {
        self.models.iter().find(|m| m.id == id)
    }

    pub fn ids(&self) -> String {
        let ids: Vec<String> = self.models.iter().map(|m| m.id.to_string()).collect();
        ids.join(", ")
    }
}

/// A device's holding registers, as the walk reads them.
pub trait Registers {
    fn read(&mut self, start: u16, count: u16) -> impl Future<Output = Result<Vec<u16>, String>>;
}

/// Walks the chain of `dev`. Every failure says where it happened.
pub async fn walk(dev: &mut impl Registers) -> Result<Chain, String> {
    let mut tried = Vec::new();
    let mut base = None;
    for b in BASES {
        match dev.read(b, 2).await {
            Ok(w) if w == MARKER => {
                base = Some(b);
                break;
            }
            Ok(w) => tried.push(format!("{b}: {:04x} {:04x}", w[0], w[1])),
            Err(e) => tried.push(format!("{b}: {e}")),
        }
    }
    let Some(base) = base else {
        return Err(format!(
            "no SunSpec marker \"SunS\" (5375 6e53) in the holding registers at 40000, 0 or 50000 ({})",
            tried.join("; ")
        ));
    };
    let mut models = Vec::new();
    let mut at = base as u32 + 2;
    loop {
        if models.len() >= MAX_MODELS {
            return Err(format!(
                "more than {MAX_MODELS} models from {base}: no end marker, the device answers garbage"
            ));
        }
        let Ok(address) = u16::try_from(at) else {
            return Err(format!(
                "the model chain from {base} runs past address 65535 without its end marker"
            ));
        };
        let w = dev
            .read(address, 2)
            .await
            .map_err(|e| format!("reading the model header at {address}: {e}"))?;
        let (id, length) = (w[0], w[1]);
        if id == END {
            break;
        }
        if id == 0 {
            return Err(format!(
                "model ID 0 at {address}: the chain is broken (expected a model or the end marker 0xFFFF)"
            ));
        }
        models.push(Entry {
            id,
            address,
            length,
        });
        at += 2 + length as u32;
    }
    Ok(Chain { base, models })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A device image as a sparse map; unmapped registers answer an exception.
    fn device(regs: &[(u16, u16)]) -> HashMap<u16, u16> {
        regs.iter().copied().collect()
    }

    struct Image<'a>(&'a HashMap<u16, u16>);

    impl Registers for Image<'_> {
        async fn read(&mut self, start: u16, count: u16) -> Result<Vec<u16>, String> {
            let r: Option<Vec<u16>> = (start..start + count)
                .map(|a| self.0.get(&a).copied())
                .collect();
            r.ok_or_else(|| "exception 0x02 (illegal data address)".to_string())
        }
    }

    async fn walk_image(img: &HashMap<u16, u16>) -> Result<Chain, String> {
        walk(&mut Image(img)).await
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_chain_is_walked_from_whichever_base_holds_the_marker() {
        // Base 0: common (66), 203 (105), end.
        let img = device(&[
            (0, 0x5375),
            (1, 0x6E53),
            (2, 1),
            (3, 66),
            (70, 203),
            (71, 105),
            (177, 0xFFFF),
            (178, 0),
        ]);
        let c = block_on(walk_image(&img)).unwrap();
        assert_eq!(c.base, 0);
        assert_eq!(
            c.models,
            [
                Entry {
                    id: 1,
                    address: 2,
                    length: 66
                },
                Entry {
                    id: 203,
                    address: 70,
                    length: 105
                }
            ]
        );
        assert_eq!(c.ids(), "1, 203");
        assert_eq!(c.first(203).map(|e| e.address), Some(70));
    }

    #[test]
    fn no_marker_and_broken_chains_are_named() {
        let e = block_on(walk_image(&device(&[(40000, 1), (40001, 2)]))).unwrap_err();
        assert!(
            e.contains("no SunSpec marker") && e.contains("40000: 0001 0002"),
            "{e}"
        );
        assert!(e.contains("0: exception 0x02"), "{e}");
        let broken = device(&[(40000, 0x5375), (40001, 0x6E53), (40002, 0), (40003, 0)]);
        let e = block_on(walk_image(&broken)).unwrap_err();
        assert!(e.contains("model ID 0 at 40002"), "{e}");
        let cut = device(&[(50000, 0x5375), (50001, 0x6E53), (50002, 1), (50003, 66)]);
        let e = block_on(walk_image(&cut)).unwrap_err();
        assert!(e.contains("model header at 50070"), "{e}");
        // A length that runs past the address space is refused, not wrapped.
        let far = device(&[(40000, 0x5375), (40001, 0x6E53), (40002, 1), (40003, 30000)]);
        let e = block_on(walk_image(&far)).unwrap_err();
        assert!(e.contains("past address 65535"), "{e}");
    }
}
