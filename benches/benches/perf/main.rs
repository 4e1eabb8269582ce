//! Counters with perf-event, and registry memory.
//!
//! * Hardware counters (cycles, instructions, branch misses) around the
//!   call loops, per call. Where the machine has none (virtual machines
//!   often do not), the bundle records `unavailable: <the error>` and the
//!   run goes on.
//! * Software counters (task clock, context switches, page faults) around
//!   updates and module loads, whose cost is mostly system calls.
//! * Memory, measured: the registry's heap per site and per module load
//!   (a counting global allocator in this binary), the heap the first
//!   update keeps (the trap handler's table), code bytes per site and per
//!   key (decoded; stubs and relays from the library's constants, named as
//!   formulas), and text made private by patching (`Private_Dirty` of the
//!   executable mappings before and after each `init()` and around updates
//!   of 10 to 10,000 sites). The registry's own count per (key, module),
//!   capacity x size_of, is kept and named a formula.
//! * Memory under module churn (`memory/churn`): generated modules loaded,
//!   updated and unloaded one after another, each at an address no module
//!   had before (as a JIT does); the trap handler's table of known slots,
//!   the resident memory and the time per module at the first and the
//!   last tenth of the run. Every module's site is decoded and its call
//!   checked, so the loop measures what its name says.
//!
//! The crate is `perf-event2`, the maintained fork of `perf-event`: it
//! builds against current kernels' headers and is released regularly,
//! while `perf-event` has not had a release in years.

use std::time::Instant;

use perf_event::Builder;
use perf_event::events::{Event, Hardware, Software};
use static_call_bench::parts::{Part, write_and_assemble};
use static_call_bench::rounds::{self, bootstrap_median, median, quantile};
use static_call_bench::subjects::{
    self, CALL_SCENARIOS, Implementation, SUBJECTS, implementations,
};
use static_call_bench::targets::{add1, flip_target};
use static_call_bench::{SITE_COUNTS, prove, quick, scale};
use static_call_bundle::{Figure, Instrument, Metric, Per, Statistic, scenario};

fn fail(what: &str) -> ! {
    eprintln!("perf benchmarks: {what}");
    std::process::exit(1);
}

mod churn;
mod counters;
mod memory;

use churn::churn;
use counters::{hardware, software};
use memory::{memory, private_text};

fn main() {
    let start = Instant::now();
    // Text made private by init(): Private_Dirty before and after each
    // implementation's init (nothing has patched anything before this).
    let mut text_by_init = Vec::new();
    for (s, imp) in implementations() {
        let a = private_text();
        (imp.init)().unwrap_or_else(|e| fail(&format!("{}: init: {e}", s.name)));
        let v = match (a, private_text()) {
            (Ok(a), Ok(b)) => Ok(b.saturating_sub(a)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        text_by_init.push((s.name.to_owned(), v));
    }
    if let Err(e) = prove::prove_all() {
        fail(&format!("not measuring what the name says: {e}"));
    }
    // Memory first: no module has been loaded or updated in this process
    // yet, so the heap and the trap handler's table start from nothing.
    let t = Instant::now();
    let mut mem = Part::new(Instrument::Registry);
    memory(&mut mem, &text_by_init);
    mem.seconds = t.elapsed().as_secs_f64();
    let mut part = Part::new(Instrument::PerfEvent);
    hardware(&mut part);
    software(&mut part);
    // Churn last: it grows the trap handler's table and reserves address
    // space that the figures above must not see.
    let t = Instant::now();
    churn(&mut mem);
    mem.seconds += t.elapsed().as_secs_f64();
    part.seconds = start.elapsed().as_secs_f64() - mem.seconds;
    if let Err(e) = static_call_bench::parts::write_part(&part) {
        fail(&e);
    }
    match write_and_assemble(&mem) {
        Ok(p) => eprintln!(
            "perf benchmarks: {} counter figures, {} missing, {} memory figures in {:.1} s; bundle {}",
            part.figures.len(),
            part.missing.len(),
            mem.figures.len(),
            start.elapsed().as_secs_f64(),
            p.display()
        ),
        Err(e) => fail(&e),
    }
}
