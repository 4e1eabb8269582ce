//! The page rendered from the committed fixtures, byte for byte.
//!
//! When a change to the page is intended, regenerate the golden file and
//! review its diff:
//!
//! ```sh
//! STATIC_CALL_REPORT_UPDATE=1 cargo test -p static-call-report --test golden
//! ```

mod common;

use std::path::Path;

#[test]
fn page_matches_golden() {
    let html = static_call_report::render(&common::fixture_inputs());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/index.html");
    if std::env::var_os("STATIC_CALL_REPORT_UPDATE").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &html).unwrap();
        eprintln!("updated {}", golden.display());
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with STATIC_CALL_REPORT_UPDATE=1 cargo test -p static-call-report",
            golden.display()
        )
    });
    if html != want {
        let line = html
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| html.lines().count().min(want.lines().count()));
        let got = html.lines().nth(line).unwrap_or("<end of page>");
        let exp = want.lines().nth(line).unwrap_or("<end of golden>");
        let cut = |s: &str| s.chars().take(300).collect::<String>();
        panic!(
            "the page differs from {} at line {}:\n  got:  {}\n  want: {}\n\
             If the change is intended: STATIC_CALL_REPORT_UPDATE=1 cargo test -p static-call-report --test golden",
            golden.display(),
            line + 1,
            cut(got),
            cut(exp)
        );
    }
}

#[test]
fn rendering_is_deterministic() {
    let a = static_call_report::render(&common::fixture_inputs());
    let b = static_call_report::render(&common::fixture_inputs());
    assert_eq!(a, b);
}
