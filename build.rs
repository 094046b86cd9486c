//! Embeds the bundled profiles and tariffs so the binary works with nothing installed.
use std::{env, fs, path::Path};

fn main() {
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("bundled.rs");
    let mut code = String::new();
    for (konst, dir) in [
        ("PROFILES", "config/profiles"),
        ("TARIFFS", "config/tariffs"),
    ] {
        println!("cargo:rerun-if-changed={dir}");
        let mut files: Vec<_> = fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        files.sort();
        code.push_str(&format!("pub static {konst}: &[(&str, &str)] = &[\n"));
        for f in files {
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            let abs = fs::canonicalize(&f).unwrap();
            println!("cargo:rerun-if-changed={}", f.display());
            code.push_str(&format!(
                "    ({stem:?}, include_str!({:?})),\n",
                abs.display().to_string()
            ));
        }
        code.push_str("];\n");
    }
    fs::write(out, code).unwrap();
}
