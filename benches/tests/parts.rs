//! Parts of different builds are never joined into one bundle.

use static_call_bench::parts::{Part, join};
use static_call_bundle::Instrument;

#[test]
fn parts_of_two_builds_are_refused() {
    let a = Part::new(Instrument::Timer);
    let mut b = Part::new(Instrument::Callgrind);
    // Parts of one build join.
    let bundle = join(vec![a.clone(), b.clone()]).expect("one build");
    assert_eq!(bundle.run.parts.len(), 2);
    assert!(
        bundle
            .run
            .parts
            .iter()
            .all(|p| p.build.as_deref() == Some(a.build.as_str()))
    );
    // A part of another commit is refused, both builds named.
    b.build = "0123456789ab".into();
    let err = join(vec![a.clone(), b.clone()]).expect_err("two builds");
    eprintln!("join refuses: {err}");
    assert!(err.contains("refusing to assemble"), "{err}");
    assert!(
        err.contains(&a.build) && err.contains("0123456789ab"),
        "{err}"
    );
    // So is a dirty build of the same commit.
    b.build = format!("{}-dirty.0badf00d", a.build.split('-').next().unwrap_or(""));
    join(vec![a, b]).expect_err("a dirty build of the same commit");
}
