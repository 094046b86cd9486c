//! What points may not do together: take the same role, share a register
//! (except as different bits of it), or sit in an address range the device
//! declared a hole.
use std::collections::HashMap;

use super::file::HoleFile;
use super::point::{key, Point};
use super::register::DataType;
use crate::role::Role;

/// Reports every clash among `points` and with `holes` through `err`.
pub(super) fn check(points: &[Point], holes: &[HoleFile], err: &mut impl FnMut(String, String)) {
    let mut roles: HashMap<Role, usize> = HashMap::new();
    for (i, p) in points.iter().enumerate() {
        if let Some(r) = p.role {
            if let Some(first) = roles.insert(r, i) {
                err(
                    key(i, &p.name, "role"),
                    format!("role {r:?} is already taken by `{}`", points[first].name)
                        .to_lowercase(),
                );
            }
        }
    }

    // Overlaps: two points may share a register only as different bits of it.
    let mut by_addr: Vec<usize> = (0..points.len()).collect();
    by_addr.sort_by_key(|&i| (points[i].table, points[i].address));
    for w in 0..by_addr.len() {
        for &j in &by_addr[w + 1..] {
            let (a, b) = (&points[by_addr[w]], &points[j]);
            if a.table != b.table || b.address as u32 >= a.end() {
                break;
            }
            let bits_apart = a.kind == DataType::Bool
                && b.kind == DataType::Bool
                && !a.table.is_bits()
                && a.bit != b.bit;
            if !bits_apart {
                err(
                    key(j, &b.name, "address"),
                    format!(
                        "{} {:#06x}..{:#06x} overlaps `{}` at {:#06x}..{:#06x}",
                        b.table,
                        b.address,
                        b.end() - 1,
                        a.name,
                        a.address,
                        a.end() - 1
                    ),
                );
            }
        }
    }
    for (i, p) in points.iter().enumerate() {
        for h in holes {
            if h.table == p.table && (p.address as u32) <= h.end as u32 && p.end() > h.start as u32
            {
                err(
                    key(i, &p.name, "address"),
                    format!("lies in the declared hole {:#06x}..{:#06x}", h.start, h.end),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Profile;
    use std::path::Path;

    fn problems(body: &str) -> Vec<String> {
        match Profile::parse(Path::new("t.toml"), &format!("id = \"t\"\n{body}")) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn point(name: &str, address: u16, fields: &str) -> String {
        format!(
            "[[points]]\nname = \"{name}\"\ntable = \"holding\"\naddress = {address}\n{fields}\n"
        )
    }

    #[test]
    fn a_register_is_shared_only_as_different_bits() {
        let u32_at_10 = point("energy", 10, "type = \"u32\"");
        let errs = problems(&(u32_at_10.clone() + &point("status", 11, "type = \"u16\"")));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("points[1] (status).address")
                && errs[0].contains("overlaps `energy` at 0x000a..0x000b"),
            "{errs:?}"
        );
        let flags = point("run", 20, "type = \"bool\"\nbit = 0")
            + &point("fault", 20, "type = \"bool\"\nbit = 3");
        assert!(problems(&(u32_at_10.clone() + &flags)).is_empty());
        let same_bit = point("run", 20, "type = \"bool\"\nbit = 0")
            + &point("fault", 20, "type = \"bool\"\nbit = 0");
        assert_eq!(problems(&same_bit).len(), 1);
        // The same address in another table is another register.
        let input = point("soc", 10, "type = \"u16\"").replace("holding", "input");
        assert!(problems(&(u32_at_10 + &input)).is_empty());
    }

    #[test]
    fn a_role_is_taken_once_and_holes_are_kept_clear() {
        let errs = problems(
            &(point("soc", 1, "type = \"u16\"\nrole = \"soc\"")
                + &point("soc2", 2, "type = \"u16\"\nrole = \"soc\"")),
        );
        assert!(errs[0].contains("is already taken by `soc`"), "{errs:?}");
        let errs = problems(
            &("[[holes]]\ntable = \"holding\"\nstart = 5\nend = 9\n".to_string()
                + &point("a", 3, "type = \"u32\"")
                + &point("b", 9, "type = \"u32\"")
                + &point("c", 11, "type = \"u16\"")),
        );
        assert_eq!(errs.len(), 1, "only b reaches into 5..=9: {errs:?}");
        assert!(errs[0].contains("(b).address") && errs[0].contains("declared hole"));
    }
}
