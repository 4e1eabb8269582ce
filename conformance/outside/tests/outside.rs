//! The whole conformance catalogue on an implementation that is on no list
//! of this workspace, the way its own repository would run it.

static_call_conformance::adapter!(outside mod outside = static_call_outside, "outside");

fn main() -> std::process::ExitCode {
    static_call_conformance::run::<outside::Impl>()
}
