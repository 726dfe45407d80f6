//! The integration tests: one binary (faster links), one module per concern.

mod authoring;
mod cli;
mod hostile;
mod inventory;
mod pack;
mod pipeline;
mod snapshots;
mod support;
