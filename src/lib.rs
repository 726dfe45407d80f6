//! trailcedar: CloudTrail detections written as Cedar policies.
//!
//! The pipeline, one module per stage:
//!
//! | stage | module | from → to |
//! |---|---|---|
//! | shared | [`text`], [`time`], [`arn`] | string helpers, timestamps, ARNs |
//! | source | [`source`] | paths, directories, stdin → inputs (skipping digests and out-of-range days) |
//! | decode | [`decode`], [`event`] | gzip + CloudTrail shapes → typed, borrowed events |
//! | inventory | [`inventory`] | AWS CLI outputs → facts |
//! | model | [`model`] | event + facts → Cedar principal, action, resource, context and entities |
//! | engine | [`engine`] | policies → validated, indexed pack → decisions with reasons |
//! | report | [`report`] | findings → table, JSON lines, JSON, CSV; the summary |
//! | correlate | [`correlate`] | matches in event time → findings over many events |
//! | scan | [`scan`] | the parallel pipeline over many inputs |
//! | cases | [`cases`] | detection test cases |
//! | cli | [`cli`] | arguments → configuration → a run |
//!
//! Each module imports only those above it in this table (`tests/scan/layers.rs`).

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod arn;
pub mod cases;
pub mod cli;
pub mod correlate;
pub mod decode;
pub mod engine;
pub mod event;
pub mod inventory;
pub mod model;
pub mod report;
pub mod scan;
pub mod source;
pub mod text;
pub mod time;

/// The shipped pack, embedded by `build.rs`.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
