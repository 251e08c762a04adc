//! The `kv-notify` binary: everything it does lives in the library ([`kv_notify::main`]).

use std::process::ExitCode;

// An allocator built for many small, short-lived allocations: each invocation parses JSON and
// builds its answer; glibc's malloc was the largest single cost under load (see the README's
// Performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    kv_notify::main()
}
