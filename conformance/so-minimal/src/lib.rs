//! A plugin in the README's minimal shape, once per implementation: a
//! declared key of the loading program, one entry point that calls it, an
//! init function, `module!(init = …)` and no `init_text!`. The conformance
//! suite builds it in debug and in release (where the optimiser inlines
//! the implementation's section accessor into this crate) and loads it.

macro_rules! plugin_for {
    ($(($m:ident, $krate:path, $name:literal))*) => {$(
        /// The plugin for one implementation.
        pub mod $m {
            use $krate as sc;
            use sc::{declare_static_call, module, static_call};

            declare_static_call!(
                #[link_name = concat!("static_call_key_", stringify!($m), "_ADD")]
                static ADD: extern "C" fn(u64) -> u64;
            );

            /// The plugin's entry point.
            #[unsafe(export_name = concat!("minimal_", stringify!($m), "_entry"))]
            pub extern "C" fn plugin_entry(x: u64) -> u64 {
                static_call!(ADD(x))
            }

            extern "C" fn plugin_init() -> i32 {
                0
            }
            module!(init = plugin_init);
        }
    )*};
}

static_call_implementations::implementations!(plugin_for);
