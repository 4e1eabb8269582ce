//! The page as a real browser renders it: headless Chromium loads the page
//! built from the committed fixtures, dumps its DOM and takes a screenshot
//! (`<target>/report-test/screenshot.png`).
//!
//! Without a `chromium` (or `chromium-browser`, `google-chrome`) on the
//! PATH the test prints `SKIPPED: chromium not found` and passes — except
//! under `CI=true`, where it fails.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs a command with a time limit; returns its stdout.
fn run(mut c: Command, limit: Duration) -> String {
    let dir = std::env::temp_dir();
    let out_path = dir.join(format!("report-browser-{}.out", std::process::id()));
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = c
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            let _ = std::fs::remove_file(&out_path);
            assert!(status.success(), "chromium exited with {status}");
            return text;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn chromium(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(["--no-first-run", "--disable-extensions"]);
    c
}

#[test]
fn renders_in_chromium() {
    let Some(bin) = find_chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium not found, and CI=true: CI must install chromium");
        }
        // Straight to stderr, past the test harness's capture, so the
        // skip shows in a plain `cargo test`.
        let _ = writeln!(std::io::stderr(), "SKIPPED: chromium not found");
        return;
    };
    let dir = common::target_dir().join("report-test");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("index.html");
    let shot = dir.join("screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let st = Command::new(env!("CARGO_BIN_EXE_static-call-report"))
        .arg("--from")
        .arg(common::fixture("machine-a/bench.json"))
        .arg(common::fixture("machine-b/bench.json"))
        .arg("--out")
        .arg(&page)
        .status()
        .unwrap();
    assert!(st.success());
    let page = page.canonicalize().unwrap();
    let url = format!("file://{}", page.display());
    let profile = dir.join("chromium-profile");

    let mut c = chromium(&bin, &profile);
    c.arg("--dump-dom").arg(&url);
    let dom = run(c, Duration::from_secs(120));
    assert!(dom.contains("</html>"), "chromium gave no DOM: {dom:.200}");

    // Every section, by id.
    for s in static_call_report::SECTIONS {
        let id = s.id;
        assert!(
            dom.contains(&format!(r#"<section id="{id}">"#)),
            "section {id} missing from the DOM"
        );
    }
    // One inline SVG per chart, each with data points (one `<circle>` each).
    let charts: Vec<(String, usize)> = dom
        .split(r#"<div class="chart" id=""#)
        .skip(1)
        .map(|rest| {
            let id = rest.split('"').next().unwrap().to_owned();
            let body = rest.split("</svg>").next().unwrap();
            assert!(body.contains("<svg"), "chart {id} is an inline SVG");
            (id, body.matches("<circle").count())
        })
        .collect();
    let want = [
        "call-hot-1arg-wall",
        "call-hot-1arg-instructions",
        "call-hot-6arg-wall",
        "call-hot-6arg-instructions",
        "call-many-sites-wall",
        "call-many-sites-instructions",
        "call-cond-none-wall",
        "call-cond-none-instructions",
        "update-idle",
        "update-busy",
        "update-threads",
        "update-threads-busy",
        "module-load",
        "module-unload",
        "memory-site",
        "memory-load",
        "memory-key-module",
    ];
    for id in want {
        let n: Vec<usize> = charts.iter().filter(|c| c.0 == id).map(|c| c.1).collect();
        assert_eq!(n.len(), 1, "one SVG for chart {id}: {charts:?}");
        assert!(n[0] > 0, "chart {id} has no data point");
    }
    assert_eq!(charts.len(), want.len(), "{charts:?}");
    // No rendering accident, and no chart replaced by a "no data" notice.
    for bad in ["NaN", "undefined", "Infinity", "[object", "No chart:"] {
        assert!(!dom.contains(bad), "the DOM contains {bad:?}");
    }
    // A scenario newer than every bundle on the page is said to be so, in
    // place of its charts (the fixtures predate the cold-call scenarios).
    assert!(
        dom.contains(
            "Not in any bundle on this page: <code>call/cold-16384-sites</code> is newer than the bundles shown."
        ),
        "no 'newer than the bundles' statement for call/cold-16384-sites"
    );
    // Missing data is stated, machine by machine.
    assert!(dom.contains(
        "fixture: xeon-16 (synthetic)</b>: no figures: not measured in this bundle (a quick run)"
    ));
    assert!(dom.contains("valgrind not found"));
    assert!(dom.contains("no conformance matrix in this bundle"));

    let mut c = chromium(&bin, &profile);
    c.arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,4000")
        .arg(&url);
    run(c, Duration::from_secs(120));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "a real screenshot"
    );
    let _ = writeln!(std::io::stderr(), "screenshot: {}", shot.display());
}
