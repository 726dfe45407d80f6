//! Regenerates `fixtures/archive`, the sample archive of the README:
//! `cargo run --example sample_archive`.

/// The corpus generator, shared with the benchmark.
#[path = "../benches/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new("fixtures/archive");
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    let written = corpus::write_sample_archive(root, std::path::Path::new("fixtures/events"))?;
    for p in written {
        println!("{}", p.display());
    }
    Ok(())
}
