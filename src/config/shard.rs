//! Splitting a fleet over several daemons: `bessmon run --shard i/n` keeps the
//! sites whose stable hash falls in shard i of n, so n daemons sharing one
//! config poll every site exactly once (a Kubernetes StatefulSet passes its
//! pod ordinal as i).
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard: use i/n with 0 <= i < n, e.g. 0/3");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// FNV-1a, 64-bit: the same on every machine and release, unlike std's hasher.
pub fn stable_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Shard {
    pub fn owns(&self, site_id: &str) -> bool {
        stable_hash(site_id) % self.count as u64 == self.index as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_site_falls_in_exactly_one_shard() {
        for n in 1..=7u32 {
            let shards: Vec<Shard> = (0..n).map(|i| Shard { index: i, count: n }).collect();
            for k in 0..500 {
                let id = format!("site-{k}");
                assert_eq!(
                    shards.iter().filter(|s| s.owns(&id)).count(),
                    1,
                    "{id} in {n} shards"
                );
            }
        }
        // Stable across machines and releases: FNV-1a's published test vector for "a".
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn parses() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
