//! Shared by the integration tests: the committed fixture bundles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use static_call_report::{ConformanceSource, Input, disambiguate, read_input};

/// `report/tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The two fixture machines, as the page is built from them, with
/// sources named relative to the crate so the page does not depend on
/// where the checkout lies.
pub fn fixture_inputs() -> Vec<Input> {
    let mut v = Vec::new();
    for m in ["machine-a", "machine-b"] {
        let mut i = read_input(
            &fixture(&format!("{m}/bench.json")),
            ConformanceSource::Beside,
        )
        .expect("fixture bundle reads");
        i.source = format!("tests/fixtures/{m}/bench.json");
        if let static_call_report::Matrix::Present { source, .. } = &mut i.conformance {
            *source = format!("tests/fixtures/{m}/conformance.json");
        }
        v.push(i);
    }
    disambiguate(&mut v);
    v
}

/// The target directory the test binary was built in.
pub fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_static-call-report"));
    bin.parent()
        .and_then(Path::parent)
        .expect("binary lies in <target>/<profile>/")
        .to_path_buf()
}
