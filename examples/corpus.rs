//! Writes a generated corpus of benign CloudTrail traffic (the benchmark's generator), to scan
//! for the pack's flag rate: `cargo run --example corpus -- DIR [EVENTS] [FILES]`, then
//! `trailcedar scan DIR` (about one event in five thousand is a planted suspicious one).

/// The corpus generator, shared with the benchmark.
#[path = "../benches/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: corpus DIR [EVENTS] [FILES]");
        std::process::exit(2);
    };
    let number =
        |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let spec = corpus::CorpusSpec {
        events: number(1, 50_000),
        files: number(2, 10),
        ..Default::default()
    };
    let bytes = corpus::write_corpus(std::path::Path::new(dir), &spec)?;
    println!(
        "{} events in {} files, {bytes} bytes, under {dir}",
        spec.events, spec.files
    );
    Ok(())
}
