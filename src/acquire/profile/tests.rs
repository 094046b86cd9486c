use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(name: &str, text: &str) -> Result<Profile, Vec<String>> {
    Profile::parse(Path::new(name), text).map_err(|e| e.iter().map(|e| e.to_string()).collect())
}

const POINT: &str = "[[points]]\nname = \"p\"\ntable = \"input\"\naddress = 0\ntype = \"u16\"\n";

#[test]
fn header_problems_are_all_reported_with_the_file() {
    let errs = parse(
        "/etc/bessmon/profiles/pcs.toml",
        "id = \"other\"\nmax_registers_per_read = 0\npause_between_requests = \"soon\"\n\
         [[holes]]\ntable = \"input\"\nstart = 9\nend = 3\n",
    )
    .unwrap_err();
    for want in [
        "id: `other` must equal the file stem `pcs`",
        "max_registers_per_read: 0 is outside 1..=125",
        "pause_between_requests",
        "holes[0]: end is before start",
        "points: a profile needs at least one point",
    ] {
        assert!(errs.iter().any(|e| e.contains(want)), "{want} in {errs:#?}");
    }
    assert!(errs
        .iter()
        .all(|e| e.contains("/etc/bessmon/profiles/pcs.toml")));
}

#[test]
fn a_syntax_error_names_its_line() {
    let errs = parse("t.toml", "id = \"t\"\n\n[[points]\n").unwrap_err();
    assert!(errs[0].contains("(line 3)"), "{errs:?}");
}

#[test]
fn a_valid_profile_is_resolved_and_planned() {
    let p = parse(
        "t.toml",
        &format!(
            "id = \"t\"\npause_between_requests = \"30ms\"\n{POINT}\
             [[points]]\nname = \"w\"\ntable = \"input\"\naddress = 1\ntype = \"u32\"\nscale_factor = \"w_sf\"\nrole = \"battery_power\"\n\
             [[points]]\nname = \"w_sf\"\ntable = \"input\"\naddress = 3\ntype = \"i16\"\n"
        ),
    )
    .unwrap();
    assert_eq!(p.pause_between_requests, Duration::from_millis(30));
    let (i, sf) = p.point("w_sf").unwrap();
    assert!(
        sf.is_scale_factor,
        "marked, so it is not published as a value"
    );
    assert_eq!(p.point("w").unwrap().1.scale_factor, Some(i));
    assert_eq!(
        p.point_with_role(Role::BatteryPower)
            .unwrap()
            .1
            .name
            .as_ref(),
        "w"
    );
    assert_eq!(p.plan.fast.len(), 1, "four adjacent registers, one request");
}

#[test]
fn duplicate_names_are_refused() {
    let errs = parse(
        "t.toml",
        &format!("id = \"t\"\n{POINT}{}", POINT.replace("= 0", "= 5")),
    )
    .unwrap_err();
    assert!(
        errs[0].contains("points[1] (p).name: duplicate point name (also points[0])"),
        "{errs:?}"
    );
}

#[test]
fn every_bundled_profile_parses() {
    for (id, _) in crate::bundled::PROFILES {
        let p = ProfileCatalog::new(&[]).load(id).unwrap();
        assert!(p.is_ok(), "{id}: {:?}", p.err());
    }
}
