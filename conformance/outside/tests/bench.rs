//! The call benchmark's entry point for an implementation on no list
//! (`static_call_bench::outside`), run on this crate as its own repository
//! would: the site proved as every benchmark proves its own, then a short
//! timed loop.

static_call_bench::outside!(mod outside = static_call_outside, "outside");

#[test]
fn the_call_benchmark_proves_and_times_an_implementation_on_no_list() {
    let m = static_call_bench::outside::measure(&outside::subject(), 5_000)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{m}");
    assert_eq!(m.name, "outside");
    // The site: the outside design's `mov rax, [rip + HOT1]; call rax`.
    let site = m.site.first().expect("the site, decoded");
    assert_eq!(site.asm.len(), 2, "{site:?}");
    assert!(site.asm[0].starts_with("mov rax,"), "{site:?}");
    assert!(site.asm[1].starts_with("call rax"), "{site:?}");
    assert!(m.ns_per_call > 0.0 && m.ns_per_call.is_finite(), "{m}");
    assert!(m.direct_ns_per_call > 0.0, "{m}");

    // A key that no longer targets the benchmark's body is refused, not
    // timed (one test: the key is shared).
    let o = outside::subject();
    outside::HOT1
        .update(static_call_bench::targets::add2)
        .expect("update");
    let err = static_call_bench::outside::measure(&o, 1_000)
        .expect_err("a key that targets add2 is not the call/hot-1arg benchmark");
    outside::HOT1
        .update(static_call_bench::targets::add1)
        .expect("update back");
    assert!(err.contains("add2") && err.contains("add1"), "{err}");
}
