//! Splitting a fleet over several daemons: `bessmon run --shard i/n` keeps the
//! sites that shard i of n wins, so n daemons sharing one config poll every
//! site exactly once (a Kubernetes StatefulSet passes its pod ordinal as i).
//!
//! A site goes to the shard with the highest weight `mix(hash(site), shard)`
//! (rendezvous hashing). Going from n to n+1 shards moves only the sites the
//! new shard now wins, about 1/(n+1) of them, all to the new shard; with
//! `hash mod n` about n/(n+1) of them would move, ledgers and all.
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

/// splitmix64's finaliser: a well-spread weight from the site's hash and a
/// shard number, the same on every machine and release.
fn weight(site: u64, shard: u32) -> u64 {
    let mut z = site ^ (shard as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Shard {
    /// The shard of `count` that a site belongs to.
    pub fn of(site_id: &str, count: u32) -> u32 {
        let h = stable_hash(site_id);
        // Ties (astronomically rare) go to the lower shard, on every machine alike.
        (0..count)
            .max_by_key(|&i| (weight(h, i), std::cmp::Reverse(i)))
            .unwrap_or(0)
    }

    pub fn owns(&self, site_id: &str) -> bool {
        Shard::of(site_id, self.count) == self.index
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
    fn one_more_shard_moves_only_its_share_and_only_to_itself() {
        let ids: Vec<String> = (0..3000).map(|k| format!("plant-{k:04}")).collect();
        for n in 1..=6u32 {
            let moved: Vec<&String> = ids
                .iter()
                .filter(|id| Shard::of(id, n) != Shard::of(id, n + 1))
                .collect();
            assert!(
                moved.iter().all(|id| Shard::of(id, n + 1) == n),
                "a moved site goes to the new shard"
            );
            let share = moved.len() as f64 / ids.len() as f64;
            let expected = 1.0 / (n + 1) as f64;
            assert!(
                (share - expected).abs() < 0.03,
                "{n} -> {}: {share:.3} moved, expected about {expected:.3}",
                n + 1
            );
        }
        // Balanced: each of 4 shards holds a quarter, give or take.
        for i in 0..4 {
            let held = ids.iter().filter(|id| Shard::of(id, 4) == i).count();
            assert!((650..=850).contains(&held), "shard {i} of 4 holds {held}");
        }
    }

    #[test]
    fn parses() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
