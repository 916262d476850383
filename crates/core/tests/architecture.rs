//! The architecture's invariants that a machine can check (ARCHITECTURE.md, "Architecture
//! invariants"): which crate may depend on which, read from `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace crate's normal (non-dev, non-build) dependencies, by name.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

fn is_aws_or_lambda(dep: &str) -> bool {
    dep.starts_with("aws-") || dep.starts_with("aws_") || dep.starts_with("lambda") || dep == "serde_dynamo"
}

#[test]
fn the_core_depends_on_no_aws_lambda_or_runtime_crate() {
    let deps = &dependencies()["intake-core"];
    let outside: Vec<_> = deps
        .iter()
        .filter(|d| is_aws_or_lambda(d) || *d == "tokio" || d.starts_with("intake-"))
        .collect();
    assert!(outside.is_empty(), "intake-core depends on {outside:?}");
}

#[test]
fn the_adapters_know_no_lambda_and_no_function() {
    let deps = &dependencies()["intake-aws"];
    let wrong: Vec<_> = deps
        .iter()
        .filter(|d| d.starts_with("lambda") || (d.starts_with("intake-") && *d != "intake-core"))
        .collect();
    assert!(wrong.is_empty(), "intake-aws depends on {wrong:?}");
}

#[test]
fn functions_depend_on_the_crates_below_them_never_on_each_other() {
    let all = dependencies();
    let functions: BTreeSet<&String> = all
        .keys()
        .filter(|name| {
            [
                "intake-alb",
                "intake-s3",
                "intake-ses",
                "intake-sns",
                "intake-sqs",
                "intake-webhooks",
            ]
            .contains(&name.as_str())
                || name.starts_with("intake-dynamodb")
        })
        .collect();
    assert!(functions.len() >= 7, "the function crates: {functions:?}");
    for f in &functions {
        let on_functions: Vec<_> = all[*f].iter().filter(|d| functions.contains(d)).collect();
        assert!(on_functions.is_empty(), "{f} depends on {on_functions:?}");
        let on_tools: Vec<_> = all[*f]
            .iter()
            .filter(|d| ["intake-local", "intake-admin", "intake-bench", "intake-cli"].contains(&d.as_str()))
            .collect();
        assert!(on_tools.is_empty(), "{f} depends on {on_tools:?}");
    }
}

/// The in-memory ports and test windows (`testing`) never ship: no function, no adapter and
/// no start-up plumbing turns the feature on for what it builds (their tests may).
#[test]
fn nothing_shipped_builds_the_in_memory_ports() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        if ["intake-bench", "intake-local", "intake-core"].contains(&name) {
            continue;
        }
        for d in p["dependencies"].as_array().unwrap() {
            if d["name"] == "intake-core" && d["kind"].is_null() {
                let features: Vec<&str> = d["features"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|f| f.as_str())
                    .collect();
                assert!(
                    !features.contains(&"testing"),
                    "{name} ships intake-core's testing feature"
                );
            }
        }
    }
}

#[test]
fn nothing_shipped_depends_on_the_local_emulator_or_the_benchmark() {
    let all = dependencies();
    for (name, deps) in &all {
        if ["intake-local", "intake-bench"].contains(&name.as_str()) {
            continue;
        }
        let wrong: Vec<_> = deps
            .iter()
            .filter(|d| ["intake-local", "intake-bench"].contains(&d.as_str()))
            .collect();
        assert!(wrong.is_empty(), "{name} depends on {wrong:?}");
    }
}

#[test]
fn the_test_kit_is_only_ever_a_dev_dependency() {
    let all = dependencies();
    for (name, deps) in &all {
        assert!(
            !deps.contains("intake-testkit"),
            "{name} depends on intake-testkit outside its tests"
        );
    }
    let kit = &all["intake-testkit"];
    assert!(
        kit.iter().all(|d| !d.starts_with("intake-")),
        "the test kit knows no intake crate: {kit:?}"
    );
}

/// A crate's modules (the files and folders of `src/`) and the modules each one names with
/// `crate::…` in code (comments and unit tests left out).
fn module_references(src: &std::path::Path) -> BTreeMap<String, BTreeSet<String>> {
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in all {
        let relative = path.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            for (at, _) in line.match_indices("crate::") {
                let named: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !named.is_empty() && named != module {
                    graph.entry(module.clone()).or_default().insert(named);
                }
            }
        }
    }
    graph
}

/// Each crate's modules form no cycle: a module that needs another's types and is needed by it
/// is one module, or the shared part belongs in a third (as the webhooks' stored records moved
/// to `domain`, and the local AWS's constants out of `stack`).
#[test]
fn no_crates_modules_name_each_other_in_a_cycle() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for krate in [
        "crates/core",
        "crates/aws",
        "crates/lambda",
        "crates/local",
        "crates/admin",
        "bench",
    ] {
        let graph = module_references(&root.join(krate).join("src"));
        // Depth-first search for a back edge.
        fn visit<'a>(
            graph: &'a BTreeMap<String, BTreeSet<String>>,
            node: &'a str,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|n| *n == node) {
                let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            if !done.insert(node) {
                return None;
            }
            path.push(node);
            for next in graph.get(node).into_iter().flatten() {
                if let Some(cycle) = visit(graph, next, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        for node in graph.keys() {
            let mut path = Vec::new();
            if let Some(cycle) = visit(&graph, node, &mut path, &mut done) {
                panic!(
                    "{krate}: its modules name each other in a cycle: {}",
                    cycle.join(" -> ")
                );
            }
        }
    }
}

/// One build for every package set (ARCHITECTURE.md, "One build"): every crate but the core
/// and the test kit (which depend on nothing they do not name) depends on `workspace-hack`,
/// which unifies the dependencies' features. The hack itself brings no Lambda crate into the
/// adapters and no test-only feature into the functions' release builds.
#[test]
fn every_crate_shares_one_set_of_dependency_features() {
    let all = dependencies();
    let missing: Vec<_> = all
        .iter()
        .filter(|(name, deps)| {
            !["intake-core", "intake-testkit", "workspace-hack"].contains(&name.as_str())
                && !deps.contains("workspace-hack")
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        missing.is_empty(),
        "{missing:?} do not depend on workspace-hack: run `cargo hakari generate && cargo hakari manage-deps`"
    );
    let hack = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workspace-hack/Cargo.toml")).unwrap();
    for line in hack.lines().filter(|l| l.contains(" = { version")) {
        let name = line.split(' ').next().unwrap();
        assert!(!name.starts_with("lambda") && !name.starts_with("aws_lambda"), "{line}");
        assert!(
            !line.contains("test-util"),
            "a test-only feature in every build: {line}"
        );
    }
    assert!(!all["workspace-hack"].iter().any(|d| d.starts_with("intake-")));
}

/// The command-line client speaks the API only: it depends on the core (for the contract
/// types) and on no adapter, no Lambda crate, no function and no tool.
#[test]
fn the_client_knows_only_the_contract() {
    let deps = &dependencies()["intake-cli"];
    let wrong: Vec<_> = deps
        .iter()
        .filter(|d| is_aws_or_lambda(d) || (d.starts_with("intake-") && *d != "intake-core"))
        .collect();
    assert!(wrong.is_empty(), "intake-cli depends on {wrong:?}");
}
