//! The layering of docs/architecture.md, checked: which top-level module of `src/` may use
//! which. Imports point down the request path (adapters → service → render → page → browser)
//! and into the leaf modules beside it; a new arrow fails here until the table (and the
//! document) says it is intended. A table without cycles keeps the code free of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module and the modules it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves: plain data and helpers, using nothing of grender (or only other leaves).
    ("config", &[]),
    ("stage", &[]),
    ("redact", &[]),
    ("cdp_health", &[]),
    ("error", &["stage", "redact"]),
    ("metrics", &["stage", "cdp_health"]),
    ("output", &["error"]),
    ("request", &["config", "error", "output", "redact", "stage"]),
    // The request path, bottom up.
    ("browser", &["config", "error", "request"]),
    (
        "page",
        &["browser", "cdp_health", "error", "output", "request"],
    ),
    (
        "render",
        &["browser", "error", "metrics", "output", "page", "request"],
    ),
    (
        "service",
        &[
            "browser", "config", "error", "metrics", "page", "render", "request",
        ],
    ),
    // Adapters over the service, and what every command does first.
    ("startup", &["cdp_health"]),
    (
        "report",
        &["config", "error", "output", "request", "service"],
    ),
    (
        "api",
        &[
            "browser", "config", "error", "output", "report", "request", "service",
        ],
    ),
    (
        "plugin",
        &[
            "browser", "config", "error", "request", "service", "startup",
        ],
    ),
    (
        "cli",
        &[
            "api", "browser", "config", "error", "output", "page", "report", "request", "service",
            "startup",
        ],
    ),
];

/// `crate::NAME` paths used in the code of `files` (comments and doc comments skipped).
fn used_modules(files: &[std::path::PathBuf]) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("source file");
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + 7..];
                // `crate::{a::X, b}` names several modules at once.
                let paths: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split([',', '}']).map(str::trim).collect(),
                    None => vec![rest],
                };
                for path in paths {
                    let name: String = path
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != "self" {
                        used.insert(name);
                    }
                }
            }
        }
    }
    used
}

fn rust_files(path: &Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        out.extend(
            rust_files(&entry.path())
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "rs")),
        );
    }
    out
}

/// Every top-level module of the library and the modules it uses.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src/").flatten() {
        let path = entry.path();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if name == "lib"
            || name == "main"
            || (path.is_file() && path.extension().is_none_or(|e| e != "rs"))
        {
            continue;
        }
        let mut used = used_modules(&rust_files(&path));
        used.remove(&name);
        out.insert(name, used);
    }
    out
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, used) in dependencies() {
        let Some(may) = allowed.get(module.as_str()) else {
            wrong.push(format!("{module} is not in the layering table (tests/architecture.rs, docs/architecture.md)"));
            continue;
        };
        for dep in used.iter().filter(|d| !may.contains(&d.as_str())) {
            wrong.push(format!("{module} uses {dep}"));
        }
    }
    assert!(wrong.is_empty(), "imports against the layering: {wrong:#?}");
}

#[test]
fn the_layering_table_has_no_cycles() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    // Depth-first search for a path back to the start.
    fn reaches(
        from: &str,
        target: &str,
        allowed: &BTreeMap<&str, &[&str]>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for dep in allowed.get(from).copied().unwrap_or(&[]) {
            if *dep == target
                || (seen.insert(dep.to_string()) && reaches(dep, target, allowed, seen))
            {
                return true;
            }
        }
        false
    }
    for module in allowed.keys() {
        assert!(
            !reaches(module, module, &allowed, &mut BTreeSet::new()),
            "{module} reaches itself"
        );
    }
}

#[test]
fn the_check_sees_real_imports() {
    // A check that found no imports at all would pass every table.
    let deps = dependencies();
    assert!(
        deps["service"].contains("render") && deps["page"].contains("browser"),
        "{deps:#?}"
    );
}
