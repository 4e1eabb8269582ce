//! The README's plugin, verbatim but for its `use`, which names the
//! implementation of STATIC_CALL_README_IMPL: the plugin the README's host
//! program loads (scenario `readme_host`).

include!(concat!(env!("OUT_DIR"), "/plugin.rs"));
