//! A driver for profiling the inline-patch write path from outside
//! (`strace -c -f`, `perf stat`, `perf record`): loads a generated module
//! with N sites on one key, then updates the key (or loads and unloads the
//! module) in a loop and prints the mean time per operation.
//!
//! `cargo run --release -p static-call-bench --example scale_loop -- [update|load|unload] [sites] [rounds]`

use std::time::{Duration, Instant};

use static_call_bench::scale;
use static_call_bench::subjects::implementations;
use static_call_bench::targets::{add1, flip_target};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("update", String::as_str);
    let sites: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: u32 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let (s, imp) = implementations()
        .find(|(s, _)| s.name == "inline-patch")
        .expect("the inline-patch implementation");
    (imp.init)().expect("init");
    let m = scale::make(imp, &[imp.scale.raw()], sites).expect("generate");
    let mut timed = Duration::ZERO;
    match what {
        "update" => {
            let id = scale::load(imp, &m, "scale").expect("load");
            let t = Instant::now();
            for i in 0..rounds {
                imp.scale.update(flip_target(u64::from(i))).expect("update");
            }
            timed = t.elapsed();
            imp.scale.update(add1).expect("update");
            scale::check_calls(&m, add1, 1).expect("calls");
            scale::unload(imp, id).expect("unload");
        }
        "load" | "unload" => {
            for _ in 0..rounds {
                let t = Instant::now();
                let id = scale::load(imp, &m, "scale").expect("load");
                let l = t.elapsed();
                let t = Instant::now();
                scale::unload(imp, id).expect("unload");
                timed += if what == "load" { l } else { t.elapsed() };
            }
        }
        _ => panic!("usage: scale_loop [update|load|unload] [sites] [rounds]"),
    }
    println!(
        "{} {what} of {sites} sites: {:.1} us per operation ({rounds} rounds)",
        s.name,
        timed.as_secs_f64() * 1e6 / f64::from(rounds)
    );
}
