//! The integration tests: one binary (faster links), one module per concern.

mod cli;
mod hostile;
mod pack;
mod pipeline;
mod snapshots;
mod support;
