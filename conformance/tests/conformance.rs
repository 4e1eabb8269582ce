//! The conformance suite over all three implementations (`cargo test`).
//!
//! Filter cells by name: `cargo test -p static-call-conformance -- torture`
//! or `STATIC_CALL_FILTER=inline-patch/ cargo test`. Longer torture runs:
//! `STATIC_CALL_SOAK=10`.

use std::process::ExitCode;

use static_call_conformance::runner::{self, Config, Implementation};
use static_call_conformance::scenarios::catalogue;

macro_rules! suite {
    ($(($m:ident, $krate:path, $name:literal))*) => {
        $(static_call_conformance::adapter!(mod $m = $krate, $name);)*

        fn main() -> ExitCode {
            runner::main(
                Config {
                    crafted_bin: env!("CARGO_BIN_EXE_crafted").into(),
                    matrix_file: "conformance.json".into(),
                },
                vec![$(Implementation {
                    name: $name,
                    scenarios: catalogue::<$m::Impl>(),
                }),*],
            )
        }
    };
}
static_call_implementations::implementations!(suite);
