//! The HTML report of the static-call suite.
//!
//! [`render`] turns benchmark bundles and conformance matrices into one
//! self-contained page: styles and SVG charts inline, no script, no
//! network. It is pure and deterministic — the same inputs give the same
//! bytes — so it can be golden-tested. [`run`] drives the benchmarks and
//! the conformance matrix for the `static-call-report` command.
#![warn(missing_docs)]

pub mod baseline;
pub mod charts;
pub mod fmt;
pub mod input;
pub mod model;
mod page;
pub mod run;
pub mod summary;
pub mod text;
pub mod threads;

pub use input::{ConformanceSource, Input, Matrix, disambiguate, read_input};
pub use page::{SECTIONS, Section, figure_key};

/// Renders the page for these machines; the first is the primary one.
pub fn render(inputs: &[Input]) -> String {
    page::render(inputs, None)
}

/// Renders the page with a "Changes against …" section at the top: the
/// first input compared with a baseline ([`baseline::compare`]).
pub fn render_with_baseline(inputs: &[Input], changes: &baseline::Comparison) -> String {
    page::render(inputs, Some(changes))
}
