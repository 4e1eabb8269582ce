//! Writes the `Signature` impls: one per arity (0 to 6) and per choice, for
//! each argument, of a value, a shared reference or a mutable reference.
//! A reference argument gets its own higher-ranked lifetime, which is the
//! type Rust gives `extern "C" fn(&u64) -> u64` (`for<'a> extern "C"
//! fn(&'a u64) -> u64`); a generic impl over `A0` cannot cover it.

use std::fmt::Write as _;

fn main() {
    let mut out = String::new();
    for n in 0..=6u32 {
        for combo in 0..3u32.pow(n) {
            let (mut generics, mut args, mut lifetimes) =
                (vec!["R: 'static".to_string()], vec![], vec![]);
            let mut c = combo;
            for i in 0..n {
                match c % 3 {
                    0 => {
                        generics.push(format!("A{i}: 'static"));
                        args.push(format!("A{i}"));
                    }
                    kind => {
                        generics.push(format!("T{i}: ?Sized + 'static"));
                        lifetimes.push(format!("'l{i}"));
                        let m = if kind == 2 { "mut " } else { "" };
                        args.push(format!("&'l{i} {m}T{i}"));
                    }
                }
                c /= 3;
            }
            let binder = if lifetimes.is_empty() {
                String::new()
            } else {
                format!("for<{}> ", lifetimes.join(", "))
            };
            writeln!(
                out,
                "// SAFETY: fn pointers and data pointers have the same size on x86-64.\n\
                 unsafe impl<{g}> Signature for {binder}extern \"C\" fn({a}) -> R {{\n\
                 \x20   type Ret = R;\n\
                 \x20   fn addr(self) -> *const u8 {{\n\
                 \x20       self as *const u8\n\
                 \x20   }}\n\
                 \x20   unsafe fn from_addr(p: *const u8) -> Self {{\n\
                 \x20       // SAFETY: the caller promises `p` is such a function.\n\
                 \x20       unsafe {{ std::mem::transmute::<*const u8, Self>(p) }}\n\
                 \x20   }}\n\
                 }}",
                g = generics.join(", "),
                a = args.join(", "),
            )
            .expect("write to a String");
        }
    }
    let dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(dir.join("signatures.rs"), out).expect("write signatures.rs");
    println!("cargo:rerun-if-changed=build.rs");
}
