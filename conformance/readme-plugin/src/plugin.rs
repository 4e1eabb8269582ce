// src/lib.rs of the plugin crate: crate-type = ["cdylib"], and the same
// implementation crate as a dependency as the program has.
use static_call_inline_patch::{declare_static_call, init_text, module, static_call};

// The program's key, by the symbol name the program exports it under.
declare_static_call!(
    #[link_name = "my_add"]
    static ADD: extern "C" fn(u64) -> u64;
);

#[unsafe(no_mangle)]
pub extern "C" fn plugin_entry(x: u64) -> u64 {
    static_call!(ADD(x))
}

// Code needed only while the plugin loads lives in init text, released
// after its init function returns.
init_text! {
    fn setup() -> u64 {
        static_call!(ADD(1))
    }
}

// Runs at load time; the plugin's sites already follow the key. Non-zero
// fails the load.
extern "C" fn plugin_init() -> i32 {
    if setup() > 0 { 0 } else { 1 }
}
module!(init = plugin_init);
