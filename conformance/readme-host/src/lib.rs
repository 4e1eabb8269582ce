//! The README's plugin, verbatim but for its `use`, which names the
//! implementation of the enabled feature: the plugin the README's host
//! program loads (scenario `readme_host`).

include!(concat!(env!("OUT_DIR"), "/plugin.rs"));
