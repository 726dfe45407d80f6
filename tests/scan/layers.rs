//! The layers import one way, along the pipeline: a module may use the modules below it, never
//! one above. A new import that reaches up fails here with the file and the line.

use std::path::Path;

/// The library's top-level modules, lowest first. A module may import those before it.
const LAYERS: &[&[&str]] = &[
    &["text", "time", "embedded"],
    &["arn"],
    &["source", "event"],
    &["decode"],
    &["inventory"],
    &["model"],
    &["engine"],
    &["report"],
    &["correlate"],
    &["scan"],
    &["cases"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `.rs` file of a module: `src/<m>.rs`, or the files under `src/<m>/`.
fn files_of(module: &str) -> Vec<std::path::PathBuf> {
    let file = Path::new("src").join(format!("{module}.rs"));
    if file.exists() {
        return vec![file];
    }
    walkdir::WalkDir::new(Path::new("src").join(module))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.path().to_path_buf())
        .collect()
}

#[test]
fn modules_import_only_the_layers_below_them() {
    let mut reaching_up = Vec::new();
    for (level, layer) in LAYERS.iter().enumerate() {
        for module in layer.iter().filter(|m| **m != "embedded") {
            let files = files_of(module);
            assert!(!files.is_empty(), "no source for module {module}");
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for (n, line) in text.lines().enumerate() {
                    for (at, _) in line.match_indices("crate::") {
                        let used: String = line[at + 7..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        let Some(used_level) = layer_of(&used) else {
                            panic!(
                                "{}:{}: `crate::{used}` is in no layer of this test",
                                file.display(),
                                n + 1
                            );
                        };
                        if used != *module && used_level >= level {
                            reaching_up.push(format!(
                                "{}:{}: {module} uses {used}",
                                file.display(),
                                n + 1
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        reaching_up.is_empty(),
        "imports that reach up or across:\n{}",
        reaching_up.join("\n")
    );
}

#[test]
fn every_module_of_the_library_has_a_layer() {
    let lib = std::fs::read_to_string("src/lib.rs").unwrap();
    for line in lib.lines() {
        if let Some(m) = line
            .strip_prefix("pub mod ")
            .and_then(|m| m.strip_suffix(';'))
        {
            assert!(
                layer_of(m).is_some(),
                "module {m} is in no layer: add it to LAYERS"
            );
        }
    }
}
