//! The peers' proofs can fail: a `static-keys` loop whose site is not its
//! key's, a PLT call that is not one (through the GOT, or straight to a
//! function of this program), a GOT call through another slot, each is
//! refused before anything is measured.

use static_call_bench::peers::{self, PEERS};
use static_call_bench::prove::prove;
use static_call_bench::subjects::{CALL_SCENARIOS, CallScenario, Loops, Subject};
use static_call_bundle::{SubjectKind, peer, scenario};

fn scenario(id: &str) -> &'static CallScenario {
    CALL_SCENARIOS
        .iter()
        .find(|s| s.id == id)
        .expect("a call scenario")
}

/// A peer named `name` whose loop for `id` is `f`.
fn posing(name: &'static str, id: &str, f: fn(u64) -> u64) -> Subject {
    let mut loops = Loops {
        hot1: None,
        hot6: None,
        many: None,
        cond_none: None,
        cond_some: None,
    };
    match id {
        scenario::CALL_HOT_1 => loops.hot1 = Some(f),
        scenario::CALL_COND_NONE => loops.cond_none = Some(f),
        _ => loops.cond_some = Some(f),
    }
    Subject {
        name,
        kind: SubjectKind::Peer,
        description: "",
        loops,
        imp: None,
    }
}

#[test]
fn peers_are_subjects_of_their_own_kind() {
    let names: Vec<&str> = PEERS.iter().map(|s| s.name).collect();
    assert_eq!(names, [peer::STATIC_KEYS, peer::PLT_CALL, peer::GOT_CALL]);
    assert!(PEERS.iter().all(|s| s.kind == SubjectKind::Peer));
    // In the scenarios the task names: static-keys in both conditional
    // scenarios, the shared object's calls in call/hot-1arg.
    let has = |name: &str, id: &str| {
        let s = PEERS.iter().find(|s| s.name == name).expect("a peer");
        (scenario(id).pick)(&s.loops).is_some()
    };
    assert!(has(peer::STATIC_KEYS, scenario::CALL_COND_NONE));
    assert!(has(peer::STATIC_KEYS, scenario::CALL_COND_SOME));
    assert!(has(peer::PLT_CALL, scenario::CALL_HOT_1));
    assert!(has(peer::GOT_CALL, scenario::CALL_HOT_1));
}

#[test]
fn peers_prove_in_optimised_builds() {
    if cfg!(debug_assertions) {
        eprintln!(
            "SKIPPED: the peers' loops have their proven shape only when optimised \
             (cargo test --release -p static-call-bench --test peers); a debug build adds calls to helpers"
        );
        return;
    }
    for s in PEERS {
        for sc in &CALL_SCENARIOS {
            if (sc.pick)(&s.loops).is_none() {
                continue;
            }
            let dumps = prove(s, sc).unwrap_or_else(|e| panic!("{e}"));
            for d in &dumps {
                eprintln!(
                    "{} {}: {} {:#x}: {:?}",
                    s.name, sc.id, d.place, d.addr, d.asm
                );
            }
            let places: Vec<&str> = dumps.iter().map(|d| d.place.as_str()).collect();
            let want: &[&str] = match s.name {
                peer::STATIC_KEYS => &["site", "block"],
                peer::PLT_CALL => &["loop", "plt-stub"],
                _ => &["loop"],
            };
            assert_eq!(places, want, "{} {}", s.name, sc.id);
        }
    }
}

/// What is broken, the peer it poses as, the scenario, the loop, and what
/// the proof must say.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    fn(u64) -> u64,
    &'static [&'static str],
);

#[test]
fn a_broken_peer_fails_the_proof() {
    use static_call_bench::subjects::{call_mem_indirect, direct, option_fn};
    let cases: [Case; 6] = [
        (
            "a PLT call that goes through the GOT",
            peer::PLT_CALL,
            scenario::CALL_HOT_1,
            peers::got_call::hot1,
            &["is not `call rel32`"],
        ),
        (
            "a PLT call whose stub is a function of this program",
            peer::PLT_CALL,
            scenario::CALL_HOT_1,
            direct::hot1,
            &["expected `jmp qword ptr [rip + GOT]`"],
        ),
        (
            "a GOT call that goes through the PLT",
            peer::GOT_CALL,
            scenario::CALL_HOT_1,
            peers::plt_call::hot1,
            &["is not `call qword ptr [rip + slot]`"],
        ),
        (
            "a GOT call through a slot that holds another function",
            peer::GOT_CALL,
            scenario::CALL_HOT_1,
            call_mem_indirect::hot1,
            &["not sc_peer_add1"],
        ),
        (
            "a key-off loop whose site is the key-on loop's",
            peer::STATIC_KEYS,
            scenario::CALL_COND_NONE,
            peers::static_keys_peer::cond_some,
            &["lies outside"],
        ),
        (
            "a key-on loop with no site of its key (an Option<fn>)",
            peer::STATIC_KEYS,
            scenario::CALL_COND_SOME,
            option_fn::some::cond_none,
            &["lies outside"],
        ),
    ];
    for (what, name, id, f, why) in cases {
        let s = posing(name, id, f);
        let err = prove(&s, scenario(id)).expect_err(what);
        eprintln!("{what}: the proof says: {err}");
        // A debug build's loops make calls to helpers (the call count
        // refuses them first), and its static-keys sites have a second
        // entry in dead code (the entry count refuses them first).
        if !cfg!(debug_assertions) {
            assert!(why.iter().all(|w| err.contains(w)), "{what}: {err}");
        }
    }
}
