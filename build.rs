//! Embeds the shipped rule catalogue (`rules/**/*.toml`) in the binary, so an installed
//! wirelint needs no files beside it, and registers the Rust checks under
//! `src/rules/checks/`.

use std::fs;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// Writes the registry of Rust checks: every `src/rules/checks/<name>.rs` (other than
/// mod.rs) is a module that exports `pub const CHECK: CheckKind`, registered as `<name>`.
/// Adding a check is adding a file.
fn checks_registry(root: &Path, out_dir: &Path) {
    let dir = root.join("src/rules/checks");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let path = e.path();
                    let stem = path.file_stem()?.to_str()?.to_string();
                    (path.extension().is_some_and(|x| x == "rs") && stem != "mod").then_some(stem)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut code = String::new();
    for n in &names {
        let path = dir.join(format!("{n}.rs"));
        code.push_str(&format!(
            "#[path = {:?}]\nmod {n};\n",
            path.display().to_string()
        ));
    }
    code.push_str(
        "/// Every check, by the name rule files use.\nconst REGISTRY: &[(&str, CheckKind)] = &[\n",
    );
    for n in &names {
        code.push_str(&format!("    ({n:?}, {n}::CHECK),\n"));
    }
    code.push_str("];\n");
    fs::write(out_dir.join("checks_registry.rs"), code).expect("writing checks_registry.rs");
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let rules = root.join("rules");
    println!("cargo:rerun-if-changed={}", rules.display());
    let mut files = Vec::new();
    collect(&rules, &mut files);
    files.sort();
    let mut code = String::from(
        "/// (path under rules/, file text) of every shipped rule.\npub const RULES: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&rules).unwrap_or(f).display().to_string();
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out_dir.join("builtin_rules.rs"), code).expect("writing builtin_rules.rs");
    checks_registry(&root, &out_dir);
}
