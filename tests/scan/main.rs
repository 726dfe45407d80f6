//! The integration tests: one binary (faster links), one module per concern.

/// The corpus generator (benchmark tooling), for the sample archive's test and its own tests.
#[path = "../../benches/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

mod authoring;
mod catalog;
mod cli;
mod correlate;
mod formats;
mod fuzz;
mod hostile;
mod inventory;
mod layers;
mod pack;
mod pipeline;
mod prefilter;
mod readme;
mod records;
mod reliability;
mod s3;
mod snapshots;
mod support;
mod suppress;
