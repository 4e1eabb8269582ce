//! The generated code of the cold, trashed and polluted scenarios: a
//! chain or loop proves only when its sites hold the form its subject
//! claims, and runs to the checked result.

use static_call_bench::gencode::{self, GenSubject, SiteKind};
use static_call_bench::subjects::implementations;
use static_call_bundle::control;

fn control(site: SiteKind) -> GenSubject {
    GenSubject {
        name: control::DIRECT,
        site,
    }
}

fn order(n: usize) -> Vec<usize> {
    let mut o: Vec<usize> = (0..n).collect();
    static_call_bench::rounds::Rng::new(7).shuffle(&mut o);
    o
}

#[test]
fn a_direct_chain_proves_and_runs() {
    let s = control(SiteKind::Direct);
    let c = gencode::chain(&s, &order(256)).expect("generated");
    let dumps = gencode::prove_chain(&s, &c, "test").expect("proved");
    assert!(dumps[0].asm[0].starts_with("call "), "{:?}", dumps[0].asm);
    assert_eq!(c.run(5), 5 + 256);
}

#[test]
fn a_chain_whose_stub_is_not_the_claimed_form_is_refused() {
    // Built with another form than the subject claims: a NOP, or an
    // indirect call through memory, where `direct` must call add1.
    for built in [SiteKind::Broken, SiteKind::CallMem, SiteKind::Lfence] {
        let c = gencode::chain(&control(built), &order(64)).expect("generated");
        let e = gencode::prove_chain(&control(SiteKind::Direct), &c, "test")
            .expect_err("a chain of another form must not prove as direct");
        assert!(
            e.contains("expected `call add1`"),
            "{built:?} chain proved as direct: {e}"
        );
    }
}

#[test]
fn every_implementation_chain_proves_and_runs() {
    for (s, imp) in implementations() {
        (imp.init)().expect("init");
        let g = GenSubject {
            name: s.name,
            site: SiteKind::Implementation(imp),
        };
        let c = gencode::chain(&g, &order(128)).expect("generated and registered");
        gencode::prove_chain(&g, &c, "test").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.run(1), 129, "{}", s.name);
        // A chain of another subject's form does not prove as this one.
        let d = gencode::chain(&control(SiteKind::Direct), &order(16)).expect("generated");
        let e = gencode::prove_chain(&g, &d, "test").expect_err("not this design's sites");
        assert!(e.contains(s.name), "{e}");
    }
}

#[test]
fn loops_prove_and_run_and_refuse_another_form() {
    let noise = gencode::polluters(16, 3).expect("polluters");
    let s = control(SiteKind::Direct);
    let l = gencode::looped(&s, &noise).expect("loop");
    gencode::prove_loop(&s, &l, &noise, "test").expect("proved");
    assert_eq!(l.run(2, 1000).0, 1002);
    let trash = gencode::trash(8, 3).expect("trash");
    let t = gencode::looped(&s, &trash).expect("loop");
    gencode::prove_loop(&s, &t, &trash, "test").expect("proved");
    assert_eq!(t.run(0, 1000).0, 1000);
    // The baseline (no call) does not prove as a direct call.
    let b = gencode::looped(&control(SiteKind::NoCall), &noise).expect("loop");
    let e = gencode::prove_loop(&s, &b, &noise, "test").expect_err("no call is no direct call");
    assert!(e.contains("expected `call add1`"), "{e}");
    // A loop proved against the wrong noise fails on its head.
    let e = gencode::prove_loop(&s, &l, &trash, "test").expect_err("wrong noise");
    assert!(e.contains("call <noise>"), "{e}");
}
