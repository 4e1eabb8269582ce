//! The measuring functions: 1-site update latency with parked threads or
//! busy callers, and a batch of 100 keys against the same updates one by
//! one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::targets::{add1, add2};

use super::proof::prove_key;
use super::system::{allowed_cpus, call_irqs, pin, thread_ctx_switches, traps, unpin};
use super::{Samples, ThreadImpl};

/// Times `updates` updates of the 1-site key `T1`, flipping its target.
fn time_updates(imp: &ThreadImpl, updates: usize) -> Result<Samples, String> {
    let (traps0, cs0, irq0) = (traps(), thread_ctx_switches(), call_irqs());
    let mut ns = Vec::with_capacity(updates);
    for i in 0..updates {
        let f = if i % 2 == 0 { add2 } else { add1 };
        let t = Instant::now();
        imp.t1
            .update(f)
            .map_err(|e| format!("{}: update: {e}", imp.name))?;
        ns.push(t.elapsed().as_nanos() as f64);
    }
    prove_key(imp, imp.t1, if updates % 2 == 1 { add2 } else { add1 })?;
    imp.t1.update(add1).map_err(|e| e.to_string())?;
    Ok(Samples {
        ns,
        traps: traps() - traps0,
        ctx_switches: thread_ctx_switches() - cs0,
        call_irqs: call_irqs() - irq0,
        note: String::new(),
    })
}

/// 1-site update latency with `parked` other threads in the process, each
/// blocked on a condition variable.
///
/// # Errors
/// A failed update, spawn or proof.
pub fn update_with_parked(
    imp: &ThreadImpl,
    parked: usize,
    updates: usize,
) -> Result<Samples, String> {
    (imp.init)().map_err(|e| e.to_string())?;
    prove_key(imp, imp.t1, add1)?;
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let handles = (0..parked)
        .map(|_| {
            let gate = gate.clone();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let (m, cv) = &*gate;
                    let mut go = m.lock().unwrap_or_else(|e| e.into_inner());
                    while !*go {
                        go = cv.wait(go).unwrap_or_else(|e| e.into_inner());
                    }
                })
                .map_err(|e| format!("spawn: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let r = time_updates(imp, updates);
    {
        let (m, cv) = &*gate;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    for h in handles {
        let _ = h.join();
    }
    r
}

/// 1-site update latency while `callers` threads call the key's one site
/// in a loop; the updater and each caller are pinned to CPUs of their own
/// while there are enough.
///
/// # Errors
/// A failed update or proof, or a wrong result of a call.
pub fn update_with_busy(
    imp: &ThreadImpl,
    callers: usize,
    updates: usize,
) -> Result<Samples, String> {
    (imp.init)().map_err(|e| e.to_string())?;
    prove_key(imp, imp.t1, add1)?;
    let cpus = allowed_cpus();
    let pinned = pin(cpus[0]);
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(std::sync::Barrier::new(callers + 1));
    let handles: Vec<_> = (0..callers)
        .map(|k| {
            let (stop, ready, cpus) = (stop.clone(), ready.clone(), cpus.clone());
            let call = imp.call_t1;
            std::thread::spawn(move || {
                pin(cpus[(k + 1) % cpus.len()]);
                ready.wait();
                let mut wrong = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r = call(1);
                    wrong += u64::from(r != 2 && r != 3);
                }
                wrong
            })
        })
        .collect();
    ready.wait();
    let r = time_updates(imp, updates);
    stop.store(true, Ordering::Relaxed);
    let wrong: u64 = handles.into_iter().map(|h| h.join().unwrap_or(1)).sum();
    unpin(&cpus);
    let mut s = r?;
    if wrong != 0 {
        return Err(format!(
            "{}: {wrong} calls reached a wrong target",
            imp.name
        ));
    }
    s.note = if !pinned {
        "not pinned (sched_setaffinity refused)".into()
    } else if callers + 1 > cpus.len() {
        format!(
            "{} threads on {} CPUs: oversubscribed, the figure measures the scheduler too",
            callers + 1,
            cpus.len()
        )
    } else {
        format!("updater and {callers} caller(s) each on a CPU of its own")
    };
    Ok(s)
}

/// The 100 keys of the batch benchmark switched `rounds` times in one batch
/// each, and `rounds` times one key at a time: (batch, one by one), one
/// sample per switch of all 100 keys.
///
/// # Errors
/// A failed update or proof.
pub fn batch_vs_single(imp: &ThreadImpl, rounds: usize) -> Result<(Samples, Samples), String> {
    (imp.init)().map_err(|e| e.to_string())?;
    for (i, k) in imp.keys.iter().enumerate() {
        prove_key(imp, k, add1)?;
        if (imp.call_key)(i, 1) != 2 {
            return Err(format!("{}: key {i} does not call add1", imp.name));
        }
    }
    let run = |one_by_one: bool| -> Result<Samples, String> {
        let (traps0, cs0, irq0) = (traps(), thread_ctx_switches(), call_irqs());
        let mut ns = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let f = if r % 2 == 0 { add2 } else { add1 };
            let t = Instant::now();
            if one_by_one {
                for k in imp.keys {
                    k.update(f).map_err(|e| e.to_string())?;
                }
            } else {
                (imp.batch)(&imp.keys, f).map_err(|e| e.to_string())?;
            }
            ns.push(t.elapsed().as_nanos() as f64);
        }
        let last = if rounds % 2 == 1 { add2 } else { add1 };
        for (i, k) in imp.keys.iter().enumerate() {
            prove_key(imp, k, last)?;
            if (imp.call_key)(i, 1) != last(1) {
                return Err(format!("{}: key {i} calls the wrong target", imp.name));
            }
        }
        (imp.batch)(&imp.keys, add1).map_err(|e| e.to_string())?;
        Ok(Samples {
            ns,
            traps: traps() - traps0,
            ctx_switches: thread_ctx_switches() - cs0,
            call_irqs: call_irqs() - irq0,
            note: String::new(),
        })
    };
    Ok((run(false)?, run(true)?))
}
