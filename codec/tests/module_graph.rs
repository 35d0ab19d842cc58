//! The codec's top-level modules import each other without cycles (the layering of
//! docs/STRUCTURE.md): read from the sources, `crate::MODULE` paths outside comments and test
//! modules, per top-level module of `codec/src`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules `text` imports by `crate::name` paths, outside comments and `#[cfg(test)]` code.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap();
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap();
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let deps: Vec<String> = imports(&text)
            .into_iter()
            .filter(|d| *d != module)
            .collect();
        graph.entry(module).or_default().extend(deps);
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        for next in graph.get(path.last().unwrap()).into_iter().flatten() {
            if next == start {
                return Some(path.iter().cloned().chain([next.clone()]).collect());
            }
            if seen.insert(next.clone()) {
                stack.push(path.iter().cloned().chain([next.clone()]).collect());
            }
        }
    }
    None
}

#[test]
fn the_codec_modules_import_each_other_without_cycles() {
    let graph = module_graph();
    // the graph is read at all: the image pipeline uses the context coder and the container
    assert!(graph["image"].contains("context") && graph["image"].contains("format"));
    for module in graph.keys() {
        assert_eq!(cycle(&graph, module), None, "import cycle through {module}");
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        cycle(&graph, "a"),
        Some(vec!["a".to_string(), "b".to_string(), "a".to_string()])
    );
    assert_eq!(
        imports("use crate::entropy::x; // crate::image\n#[cfg(test)] use crate::png;"),
        BTreeSet::from(["entropy".to_string()])
    );
}

/// The pipeline's names re-exported at the crate root, which `crate::Name` paths reach without
/// naming the module.
const PIPELINE_NAMES: [&str; 5] = [
    "crate::ImageCodecError",
    "crate::EffortError",
    "crate::Registry",
    "crate::compress",
    "crate::Image",
];

#[test]
fn families_and_the_entropy_coder_do_not_know_the_pipeline() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for low in ["entropy", "engine", "model"] {
        let mut files = Vec::new();
        sources(&src.join(low), &mut files);
        assert!(!files.is_empty(), "{low}/ has sources");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for name in PIPELINE_NAMES {
                let uses = text
                    .lines()
                    .any(|l| l.split("//").next().unwrap().contains(name));
                assert!(!uses, "{} uses {name}", file.display());
            }
        }
    }
    let graph = module_graph();
    for low in ["entropy", "engine", "model"] {
        for high in ["image", "archive", "effort", "registry"] {
            assert!(
                !graph.get(low).is_some_and(|d| d.contains(high)),
                "{low} imports {high}"
            );
        }
    }
}
