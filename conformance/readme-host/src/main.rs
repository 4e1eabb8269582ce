//! The README's host program ("Modules": the program that loads the
//! plugin), verbatim but for its `use`, which names the implementation of
//! STATIC_CALL_README_IMPL. The conformance scenario `readme_host` builds it
//! with the plugin of this crate and runs it where the README's path
//! `plugin/target/release/libplugin.so` names that plugin.

include!(concat!(env!("OUT_DIR"), "/host.rs"));
