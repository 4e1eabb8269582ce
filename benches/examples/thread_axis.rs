//! The thread axis of update latency for all three implementations, from
//! one command (a benchmark: it measures and prints, it asserts nothing):
//!
//! `cargo run --release -p static-call-bench --example thread_axis [-- updates]`
//!
//! Rows: a 1-site update with 0, 10, 100 and 1,000 parked threads, with 1,
//! 2 and 4 busy callers of the key, and 100 keys of one site switched in
//! one batch against one by one. Each cell: median / p99 / max of the
//! per-update samples (301 by default). Below the table: where the
//! busy-caller time goes (breakpoint traps, the updater's context
//! switches, function-call interrupts per update) and the ratios the
//! targets are stated in.

use static_call_bench::threads::{
    Samples, ThreadImpl, allowed_cpus, batch_vs_single, thread_impls, update_with_busy,
    update_with_parked,
};

/// One row of the table: what it measures for an implementation.
type Row = Box<dyn Fn(&ThreadImpl) -> Result<Samples, String>>;

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn cell(s: &Samples) -> String {
    format!(
        "{} / {} / {}",
        fmt_ns(s.median()),
        fmt_ns(s.p99()),
        fmt_ns(s.max())
    )
}

fn main() {
    let updates: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(301);
    let impls = thread_impls();
    let cpus = allowed_cpus().len();
    let rows: Vec<(String, Row)> = vec![
        (
            "0 threads".into(),
            Box::new(move |i| update_with_parked(i, 0, updates)),
        ),
        (
            "10 parked".into(),
            Box::new(move |i| update_with_parked(i, 10, updates)),
        ),
        (
            "100 parked".into(),
            Box::new(move |i| update_with_parked(i, 100, updates)),
        ),
        (
            "1,000 parked".into(),
            Box::new(move |i| update_with_parked(i, 1000, updates)),
        ),
        (
            "1 busy caller".into(),
            Box::new(move |i| update_with_busy(i, 1, updates)),
        ),
        (
            "2 busy callers".into(),
            Box::new(move |i| update_with_busy(i, 2, updates)),
        ),
        (
            "4 busy callers".into(),
            Box::new(move |i| update_with_busy(i, 4, updates)),
        ),
    ];
    let mut table: Vec<(String, Vec<Samples>)> = Vec::new();
    for (label, f) in &rows {
        let mut row = Vec::new();
        for imp in &impls {
            match f(imp) {
                Ok(s) => row.push(s),
                Err(e) => {
                    eprintln!("{label}, {}: {e}", imp.name);
                    std::process::exit(1);
                }
            }
        }
        table.push((label.clone(), row));
    }
    let rounds = updates.div_ceil(3);
    let mut batch = Vec::new();
    for imp in &impls {
        match batch_vs_single(imp, rounds) {
            Ok(b) => batch.push(b),
            Err(e) => {
                eprintln!("batch, {}: {e}", imp.name);
                std::process::exit(1);
            }
        }
    }
    table.push((
        "100 keys, one batch".into(),
        batch.iter().map(|b| b.0.clone()).collect(),
    ));
    table.push((
        "100 keys, one by one".into(),
        batch.iter().map(|b| b.1.clone()).collect(),
    ));

    println!(
        "Update latency, median / p99 / max ({updates} updates per cell; batch rows: {rounds} switches of all 100 keys), {cpus} CPUs:\n"
    );
    print!("| threads in the process |");
    for imp in &impls {
        print!(" {} |", imp.name);
    }
    println!();
    print!("|---|");
    for _ in &impls {
        print!("---|");
    }
    println!();
    for (label, row) in &table {
        print!("| {label} |");
        for s in row {
            print!(" {} |", cell(s));
        }
        println!();
    }
    println!(
        "\nWhere the time goes, per update (traps served, updater context switches, CAL interrupts machine-wide):\n"
    );
    for (label, row) in &table {
        let per = |x: u64, s: &Samples| x as f64 / s.ns.len().max(1) as f64;
        print!("{label:>22}:");
        for (imp, s) in impls.iter().zip(row) {
            print!(
                "  {} {:.2} traps, {:.2} cs, {:.1} irq;",
                imp.name,
                per(s.traps, s),
                per(s.ctx_switches, s),
                per(s.call_irqs, s)
            );
        }
        println!();
        if let Some(note) = row.iter().map(|s| &s.note).find(|n| !n.is_empty()) {
            println!("{:>22}  ({note})", "");
        }
    }
    println!(
        "\nRatios (targets: 1,000 parked <= 2x idle; 1 busy caller <= 2x idle; idle <= 10 us; batch of 100 <= 3x one 1-key update):\n"
    );
    for (k, imp) in impls.iter().enumerate() {
        let idle = table[0].1[k].median();
        println!(
            "{:>13}: idle {}, 1,000 parked {:.2}x, 1 busy caller {:.2}x, batch of 100 {:.2}x a 1-key update ({:.2}x one by one)",
            imp.name,
            fmt_ns(idle),
            table[3].1[k].median() / idle,
            table[4].1[k].median() / idle,
            batch[k].0.median() / idle,
            batch[k].1.median() / batch[k].0.median(),
        );
    }
}
