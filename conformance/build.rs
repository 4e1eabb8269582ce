//! Exports the test program's keys dynamically, so that the test shared
//! object (`so-module`) can bind its `declare_static_call!` keys to them.

fn main() {
    println!("cargo:rustc-link-arg-tests=-Wl,--export-dynamic-symbol=static_call_key_*");
    // The hook the test shared object's init calls (found with dlsym).
    println!("cargo:rustc-link-arg-tests=-Wl,--export-dynamic-symbol=static_call_test_hook_*");
    // The keys the README's plugin declares (scenario `readme_plugin`).
    println!("cargo:rustc-link-arg-tests=-Wl,--export-dynamic-symbol=my_add*");
    println!("cargo:rerun-if-changed=build.rs");
}
