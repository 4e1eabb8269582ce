//! The conformance suite over all three implementations (`cargo test`).
//!
//! Filter cells by name: `cargo test -p static-call-conformance -- torture`
//! or `STATIC_CALL_FILTER=inline-patch/ cargo test`. Longer torture runs:
//! `STATIC_CALL_SOAK=10`.

use std::process::ExitCode;

use static_call_conformance::runner::{self, Config, Implementation};
use static_call_conformance::scenarios::catalogue;

static_call_conformance::adapter!(mod inline_patch = static_call_inline_patch, "inline-patch");
static_call_conformance::adapter!(mod trampoline = static_call_trampoline, "trampoline");
static_call_conformance::adapter!(mod indirect = static_call_indirect, "indirect");

fn main() -> ExitCode {
    runner::main(
        Config {
            crafted_bin: env!("CARGO_BIN_EXE_crafted").into(),
        },
        vec![
            Implementation {
                name: "inline-patch",
                scenarios: catalogue::<inline_patch::Impl>(),
            },
            Implementation {
                name: "trampoline",
                scenarios: catalogue::<trampoline::Impl>(),
            },
            Implementation {
                name: "indirect",
                scenarios: catalogue::<indirect::Impl>(),
            },
        ],
    )
}
