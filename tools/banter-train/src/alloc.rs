//! The process's allocator: jemalloc, built with the unprefixed `malloc`/`free`/`posix_memalign`, so
//! libtorch's allocations (every tensor of a training step) come from it as well as Rust's. Linked into
//! `banter-train` and into anything else that links this library (its benches and tests).
//!
//! glibc's heap served libtorch's 64-byte-aligned blocks with a search and a split per block: `_int_malloc`,
//! `unlink_chunk`, `_int_free` and `malloc_consolidate` were 5% of the first thread's time in a GPT-2 124M
//! LoRA bf16 step, serial, with the second core waiting. With jemalloc that step is 4% faster on the
//! 2-core AMX Xeon (full fp32 and bf16 training unchanged; peak RSS +5–9%): docs/benchmarks.md.

/// The allocator, Rust's and (through the exported C symbols) everyone else's in the process.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (its `malloc_conf` symbol; `MALLOC_CONF` in the environment applies after it): freed
/// pages are kept rather than handed back to the kernel on a timer — as `keep_freed_memory` does for glibc —
/// so a step's activations are not faulted in and zeroed again on the next.
#[allow(non_upper_case_globals, unsafe_code)]
#[unsafe(no_mangle)]
pub static malloc_conf: &u8 = &b"dirty_decay_ms:-1,muzzy_decay_ms:-1\0"[0];
