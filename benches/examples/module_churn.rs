//! Bounded memory under churn: loads, updates and unloads generated
//! modules, each at an address no module had before (as a JIT does), and
//! prints, per block of modules, the trap handler's table of known slots,
//! the resident memory and the mean time per load + update + unload.
//! Every module's first function is called and checked, and its site
//! decoded (it must call the key's current target directly), so the loop
//! measures what its name says.
//!
//! `cargo run --release -p static-call-bench --example module_churn -- [modules] [sites]`
//! (defaults: 100000 modules of 8 sites).

use std::time::{Duration, Instant};

use static_call_bench::scale;
use static_call_bench::subjects::implementations;
use static_call_bench::targets::{add1, add2};
use static_call_core::text;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4
}

/// Keeps `addr..addr + len` reserved so no later module lands there.
fn reserve(addr: usize, len: usize) {
    // SAFETY: an inaccessible mapping that never replaces another.
    unsafe {
        libc::mmap(
            addr as *mut _,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_FIXED_NOREPLACE
                | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let sites: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let (_, imp) = implementations()
        .find(|(s, _)| s.name == "inline-patch")
        .expect("the inline-patch implementation");
    (imp.init)().expect("init");
    let key = imp.scale;
    let block = (n / 10).max(1);
    let mut timed = Duration::ZERO;
    let mut last = None;
    println!("modules  trap-table-slots  rss-KiB  us-per-load+update+unload");
    for i in 0..n {
        let m = scale::make(imp, &[key.raw()], sites).expect("generate");
        if last == Some(m.code.addr()) {
            panic!("module {i} placed at the address of the previous one");
        }
        last = Some(m.code.addr());
        let t = Instant::now();
        let id = scale::load(imp, &m, "churn").expect("load");
        let target = if i % 2 == 0 { add2 } else { add1 };
        key.update(target).expect("update");
        timed += t.elapsed();
        // The site calls the target directly (decoded), and the call
        // reaches it.
        let f = &m.funcs[0];
        // SAFETY: the module's code is mapped and loaded.
        let b = unsafe { std::ptr::read_volatile(f.site as *const [u8; 5]) };
        let rel = i32::from_le_bytes([b[1], b[2], b[3], b[4]]);
        let dest = (f.site as i64 + 5 + i64::from(rel)) as usize;
        assert!(
            b[0] == 0xe8 && dest == target as *const () as usize,
            "module {i}: site {:#x} holds {b:02x?}, not a call to the target",
            f.site
        );
        // SAFETY: as above.
        let r = unsafe { f.call(1) };
        assert_eq!(r, if i % 2 == 0 { 3 } else { 2 }, "module {i}");
        let t = Instant::now();
        scale::unload(imp, id).expect("unload");
        timed += t.elapsed();
        let (a, len) = (m.code.addr(), m.code.len());
        drop(m);
        reserve(a, len);
        if (i + 1) % block == 0 {
            println!(
                "{:7}  {:16}  {:7}  {:.1}",
                i + 1,
                text::trap_table_len(),
                rss_kib(),
                timed.as_secs_f64() * 1e6 / block as f64
            );
            timed = Duration::ZERO;
        }
    }
}
