//! `update/cond-sites`: every subject's key switches on and off, every
//! site is decoded in each state and called (the target once per site when
//! on, never when off), and the check refuses a key paired with the wrong
//! sites or count.
//!
//! One test in its own binary: `static-keys` documents its switches as
//! single-threaded; here the harness's main thread only waits for it.

use static_call_bench::peers::{self, CondKey, CondSites};
use static_call_bench::subjects::implementations;

/// A debug build compiles both branches of `static_branch_unlikely!`
/// (its `if KEY.initial_enabled()` is folded only when optimised), so each
/// of its sites has a second jump entry in dead code: static-keys is
/// checked in optimised builds only.
fn skip(c: &CondSites) -> bool {
    let skip = cfg!(debug_assertions) && matches!(c.key, CondKey::StaticKeys(_));
    if skip {
        eprintln!(
            "SKIPPED: {} {}: a debug build gives each static-keys site a second jump entry in dead code              (cargo test --release -p static-call-bench --test peer_switch)",
            c.subject, c.key_name
        );
    }
    skip
}

#[test]
fn cond_site_keys_switch_and_every_site_follows() {
    for (s, imp) in implementations() {
        (imp.init)().unwrap_or_else(|e| panic!("{}: {e}", s.name));
    }
    for n in [1, 100, 2_000] {
        let all = peers::cond_sites(n);
        assert_eq!(all.len(), implementations().count() + 1, "{n} sites");
        for c in &all {
            if skip(c) {
                continue;
            }
            c.check(false, "off").unwrap_or_else(|e| panic!("{e}"));
            // SAFETY: no other thread runs code of this binary (the
            // harness's main thread waits for this, the only test).
            unsafe { c.switch(true) }.unwrap_or_else(|e| panic!("{e}"));
            c.check(true, "on").unwrap_or_else(|e| panic!("{e}"));
            // A check of the wrong state fails.
            let err = c
                .check(false, "on, checked as off")
                .expect_err("wrong state");
            eprintln!("{} {n}, on, checked as off: {err}", c.subject);
            // SAFETY: as above.
            unsafe { c.switch(false) }.unwrap_or_else(|e| panic!("{e}"));
            c.check(false, "off again")
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    // A key paired with another key's sites, or a wrong count, is refused.
    for c in peers::cond_sites(100) {
        if skip(&c) {
            continue;
        }
        let other = peers::cond_sites(1)
            .into_iter()
            .find(|o| o.subject == c.subject)
            .expect("same subject");
        let wrong_sites = CondSites {
            run: other.run,
            ..c
        };
        let err = wrong_sites
            .check(false, "wrong sites")
            .expect_err("wrong sites");
        eprintln!("{}: K100 with K1's function: {err}", c.subject);
        assert!(err.contains("lies outside"), "{err}");
        let wrong_count = CondSites { sites: 99, ..c };
        let err = wrong_count
            .check(false, "wrong count")
            .expect_err("wrong count");
        eprintln!("{}: K100 counted as 99 sites: {err}", c.subject);
        assert!(err.contains("expected 99"), "{err}");
        if matches!(c.key, CondKey::StaticKeys(_)) {
            assert!(err.contains("jump entries"), "{err}");
        }
    }
}
