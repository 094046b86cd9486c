//! The SunSpec information models bessmon knows, as data: the fixed points of
//! each model (offset from the model's ID register, size, SunSpec type, scale
//! factor, unit), embedded from `config/sunspec/models.json`, which names the
//! SunSpec models repository (via pysunspec2) as its source.
use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Catalogue {
    pub source: String,
    pub models: Vec<Model>,
}

#[derive(Debug, Deserialize)]
pub struct Model {
    pub id: u16,
    /// snake_case group name (`ac_meter_abcn`), the prefix of its point names.
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// Registers after the ID and L header, as the model defines them.
    pub length: u16,
    pub points: Vec<ModelPoint>,
}

#[derive(Debug, Deserialize)]
pub struct ModelPoint {
    pub name: String,
    /// From the model's ID register (the header's two registers included).
    pub offset: u16,
    pub size: u16,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub sf: Option<String>,
    #[serde(default)]
    pub units: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        serde_json::from_str(include_str!("../../../config/sunspec/models.json"))
            .expect("config/sunspec/models.json is checked by a unit test")
    })
}

pub fn model(id: u16) -> Option<&'static Model> {
    catalogue().models.iter().find(|m| m.id == id)
}

/// How bessmon reads a SunSpec type: its data type, and the raw patterns
/// SunSpec reserves for "not implemented". None: a type bessmon does not read.
pub fn data_type(kind: &str) -> Option<(&'static str, &'static [i64])> {
    Some(match kind {
        "int16" | "sunssf" | "sunsdp" => ("i16", &[-32768]),
        "uint16" | "enum16" | "bitfield16" | "count" => ("u16", &[-1]),
        // An accumulator at 0 is "not accumulated" (SunSpec's not-implemented value).
        "acc16" => ("u16", &[0]),
        "int32" => ("i32", &[-2_147_483_648]),
        "uint32" | "enum32" | "bitfield32" | "ipaddr" => ("u32", &[-1]),
        "acc32" => ("u32", &[0]),
        "int64" => ("i64", &[i64::MIN]),
        "uint64" | "bitfield64" => ("u64", &[-1]),
        "acc64" => ("u64", &[0]),
        "float32" => ("f32", &[]),
        "float64" => ("f64", &[]),
        "string" => ("string", &[]),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_models_are_whole_and_consistent() {
        let c = catalogue();
        for id in [
            1, 101, 102, 103, 111, 112, 113, 124, 201, 202, 203, 204, 211, 212, 213, 214, 701, 713,
            802,
        ] {
            let m = model(id).unwrap_or_else(|| panic!("model {id}"));
            for p in &m.points {
                assert!(
                    p.offset >= 2 && p.offset + p.size <= m.length + 2,
                    "{id} {p:?}"
                );
                if let Some(sf) = &p.sf {
                    assert!(
                        sf.parse::<i16>().is_ok() || m.points.iter().any(|q| &q.name == sf),
                        "{id} {}: scale factor {sf}",
                        p.name
                    );
                }
            }
        }
        assert!(c.source.contains("pysunspec2"));
        // Published offsets (SunSpec model 203): W at 40000+2+18 on a device based at 40000.
        let w = model(203).unwrap().points.iter().find(|p| p.name == "W");
        assert_eq!(w.map(|p| (p.offset, p.kind.as_str())), Some((18, "int16")));
        let wh = model(701)
            .unwrap()
            .points
            .iter()
            .find(|p| p.name == "TotWhInj");
        assert_eq!(wh.map(|p| (p.offset, p.size)), Some((19, 4)));
    }
}
