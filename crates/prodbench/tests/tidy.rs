//! Tidy checks: the rules ARCHITECTURE.md states about the workspace's shape, checked from
//! the files themselves (manifests and `Cargo.lock` parsed with `toml`, sources read as text,
//! nothing run), so a change that breaks one fails here, naming the crate and the rule,
//! rather than in review.
//!
//! - Each crate depends only on crates to its left in the flow order, which is the order of
//!   crates/README.md's table (every crate must be in it).
//! - Heavy dependencies stay in the crates named in [`HEAVY`], and none is beneath the
//!   crates in [`LIGHT`].
//! - One HTTP stack: one reqwest in `Cargo.lock`, and no aws-lc-rs (ring is the provider).
//! - Library crates never print: only the binary knows terminals, and in it only the
//!   `Printer` (`output/`) writes.
//! - Every crate root starts with a `//!` doc saying what the crate is for.

mod common;

use std::path::{Path, PathBuf};

use common::repo_root;

/// A heavy dependency, the only crates that may depend on it, and why.
const HEAVY: &[(&str, &[&str], &str)] = &[
    ("bollard", &["prodbench-docker"], "the Docker Engine client belongs to the Docker backend"),
    ("reqwest", &["prodbench-llm", "prodbench-mcp"], "HTTP belongs to the model client and the MCP client"),
    ("rustls", &["prodbench-llm", "prodbench-mcp"], "TLS (and its crypto provider) belongs to the HTTP clients"),
    ("rmcp", &["prodbench-mcp"], "no rmcp type crosses prodbench-mcp's API"),
    ("rusqlite", &["prodbench-store"], "only the store speaks SQL"),
    ("clap", &["prodbench"], "only the binary knows the command line"),
    ("indicatif", &["prodbench"], "only the binary knows terminals"),
];

/// The binary, the one crate that may print.
const BINARY: &str = "prodbench";

/// Macros that write to the process's stdout or stderr (`println!(` also matches `eprintln!(`).
const PRINTING: &[&str] = &["print!(", "println!(", "dbg!("];

struct Crate {
    name: String,
    dir: PathBuf,
    manifest: toml::Table,
}

fn workspace_crates() -> Vec<Crate> {
    let mut crates: Vec<Crate> = std::fs::read_dir(repo_root().join("crates"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .map(|dir| {
            let manifest: toml::Table = toml::from_str(&read(&dir.join("Cargo.toml"))).unwrap();
            let name = manifest["package"]["name"].as_str().unwrap().to_string();
            Crate { name, dir, manifest }
        })
        .collect();
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    crates
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The crates in crates/README.md's table, in its (the flow's) order.
fn flow_order() -> Vec<String> {
    read(&repo_root().join("crates/README.md")).lines().filter_map(|line| line.strip_prefix("| `")?.split_once('`').map(|(name, _)| name.to_string())).collect()
}

/// Every dependency a manifest declares, by the package's name, with the table it is in.
fn dependencies(manifest: &toml::Table) -> Vec<(String, String)> {
    let sections = ["dependencies", "dev-dependencies", "build-dependencies"];
    let targets = manifest.get("target").and_then(|t| t.as_table()).into_iter().flat_map(|t| t.values()).filter_map(|t| t.as_table());
    std::iter::once(manifest)
        .chain(targets)
        .flat_map(|table| sections.iter().filter_map(move |section| Some((*section, table.get(*section)?.as_table()?))))
        .flat_map(|(section, deps)| deps.iter().map(move |(key, spec)| (section.to_string(), package_name(key, spec))))
        .collect()
}

/// A dependency's package name: its `package` key when renamed, else its key.
fn package_name(key: &str, spec: &toml::Value) -> String {
    spec.get("package").and_then(|p| p.as_str()).unwrap_or(key).to_string()
}

fn assert_no_violations(rule: &str, violations: Vec<String>) {
    assert!(violations.is_empty(), "{rule}:\n  {}", violations.join("\n  "));
}

#[test]
fn every_crate_is_in_the_flow_order_once() {
    let flow = flow_order();
    let mut violations: Vec<String> =
        workspace_crates().iter().filter(|c| !flow.contains(&c.name)).map(|c| format!("{} is missing from crates/README.md's table", c.name)).collect();
    let names: Vec<String> = workspace_crates().into_iter().map(|c| c.name).collect();
    violations.extend(flow.iter().filter(|name| !names.contains(name)).map(|name| format!("crates/README.md lists {name}, which is not a crate")));
    violations.extend(flow.iter().enumerate().filter(|(i, name)| flow[..*i].contains(name)).map(|(_, name)| format!("crates/README.md lists {name} twice")));
    assert_no_violations("crates/README.md's table is the flow order of every crate", violations);
}

#[test]
fn crates_depend_only_on_crates_to_their_left() {
    let flow = flow_order();
    let position = |name: &str| flow.iter().position(|n| n == name);
    let mut violations = Vec::new();
    for krate in workspace_crates() {
        let Some(mine) = position(&krate.name) else { continue };
        for (section, dep) in dependencies(&krate.manifest) {
            match position(&dep) {
                Some(theirs) if theirs > mine => violations.push(format!("{} [{section}] uses {dep}, which comes after it in the flow", krate.name)),
                _ => {}
            }
        }
    }
    assert_no_violations("each crate knows only the crates to its left (ARCHITECTURE.md; order: crates/README.md)", violations);
}

#[test]
fn heavy_dependencies_stay_where_they_belong() {
    let mut violations = Vec::new();
    for krate in workspace_crates() {
        for (section, dep) in dependencies(&krate.manifest) {
            if let Some((_, allowed, why)) = HEAVY.iter().find(|(heavy, allowed, _)| *heavy == dep && !allowed.contains(&krate.name.as_str())) {
                violations.push(format!("{} [{section}] uses {dep}, allowed only in {}: {why}", krate.name, allowed.join(", ")));
            }
        }
    }
    assert_no_violations("heavy dependencies sit where they are needed (ARCHITECTURE.md)", violations);
}

/// Crates that build light, and what may not be anywhere beneath them (their normal
/// dependencies, followed through the workspace): the reports and the store are read far
/// more often than trials run.
const LIGHT: &[&str] = &["prodbench-score", "prodbench-store", "prodbench-report"];
const NOT_BENEATH_LIGHT: &[&str] = &["reqwest", "rustls", "bollard", "rmcp", "prodbench-sandbox", "prodbench-grade", "prodbench-llm"];

#[test]
fn the_grading_core_store_and_report_build_without_http_or_sandboxes() {
    let crates = workspace_crates();
    let normal_deps = |name: &str| -> Vec<String> {
        let krate = crates.iter().find(|c| c.name == name);
        krate.map_or_else(Vec::new, |c| dependencies(&c.manifest).into_iter().filter(|(section, _)| section == "dependencies").map(|(_, dep)| dep).collect())
    };
    let mut violations = Vec::new();
    for light in LIGHT {
        let (mut beneath, mut todo) = (std::collections::BTreeSet::new(), vec![light.to_string()]);
        while let Some(name) = todo.pop() {
            for dep in normal_deps(&name) {
                if beneath.insert(dep.clone()) {
                    todo.push(dep);
                }
            }
        }
        violations.extend(
            NOT_BENEATH_LIGHT.iter().filter(|heavy| beneath.contains(**heavy)).map(|heavy| format!("{light} depends (through the workspace) on {heavy}")),
        );
    }
    assert_no_violations("the grading core, the store and the report build without HTTP, TLS or sandboxes (ARCHITECTURE.md)", violations);
}

#[test]
fn one_http_stack() {
    let lock: toml::Table = toml::from_str(&read(&repo_root().join("Cargo.lock"))).unwrap();
    let packages = lock["package"].as_array().unwrap();
    let versions_of =
        |name: &str| -> Vec<&str> { packages.iter().filter(|p| p["name"].as_str() == Some(name)).map(|p| p["version"].as_str().unwrap()).collect::<Vec<_>>() };
    let mut violations = Vec::new();
    if versions_of("reqwest").len() != 1 {
        violations.push(format!("Cargo.lock holds reqwest {:?}: prodbench-llm must use the reqwest rmcp uses", versions_of("reqwest")));
    }
    if !versions_of("aws-lc-rs").is_empty() {
        violations.push("Cargo.lock holds aws-lc-rs: a reqwest or rmcp TLS feature bundles it; use the `*-no-provider` features (ring is installed)".into());
    }
    assert_no_violations("one HTTP stack: one reqwest, rustls with ring", violations);
}

/// `(file, line number, line)` of every non-comment line under `dir` that calls one of
/// `macros`.
fn macro_calls(dir: &Path, macros: &[&str]) -> Vec<(PathBuf, usize, String)> {
    let mut found = Vec::new();
    for path in std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()) {
        if path.is_dir() {
            found.extend(macro_calls(&path, macros));
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = read(&path);
            let calls = text.lines().enumerate().filter(|(_, line)| !line.trim_start().starts_with("//") && macros.iter().any(|m| line.contains(m)));
            found.extend(calls.map(|(i, line)| (path.clone(), i + 1, line.trim().to_string())));
        }
    }
    found
}

#[test]
fn library_crates_never_print() {
    let root = repo_root();
    let violations = workspace_crates()
        .iter()
        .filter(|c| c.name != BINARY)
        .flat_map(|c| macro_calls(&c.dir.join("src"), PRINTING).into_iter().map(|call| (c.name.clone(), call)))
        .map(|(name, (path, line, text))| format!("{name}: {}:{line}: {text}", path.strip_prefix(&root).unwrap_or(&path).display()))
        .collect();
    assert_no_violations("library crates never print; output goes through the binary (ARCHITECTURE.md)", violations);
}

#[test]
fn in_the_binary_only_the_printer_prints() {
    let root = repo_root();
    let src = root.join("crates").join(BINARY).join("src");
    let violations = macro_calls(&src, PRINTING)
        .into_iter()
        .filter(|(path, _, _)| !path.starts_with(src.join("output")))
        .map(|(path, line, text)| format!("{}:{line}: {text}", path.strip_prefix(&root).unwrap_or(&path).display()))
        .collect();
    assert_no_violations("in the binary only `output/` (the Printer) writes to stdout or stderr (ARCHITECTURE.md)", violations);
}

#[test]
fn every_crate_root_starts_with_a_module_doc() {
    let violations = workspace_crates()
        .iter()
        .filter_map(|c| {
            let root = ["lib.rs", "main.rs"].iter().map(|f| c.dir.join("src").join(f)).find(|p| p.is_file())?;
            (!read(&root).starts_with("//!")).then(|| format!("{}: {} does not start with a `//!` doc", c.name, root.display()))
        })
        .collect();
    assert_no_violations("every crate says what it is for", violations);
}
