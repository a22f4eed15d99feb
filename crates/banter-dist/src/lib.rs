//! banter's data parallelism on libtorch's own distributed engine (c10d): the launch torchrun describes
//! ([`Launch`]), a process group over its TCPStore — Gloo on the CPU, NCCL on CUDA — ([`ProcessGroup`]),
//! and gradient synchronisation in buckets ([`GradSync`]).
//!
//! tch binds none of c10d; `csrc/c10d.cpp` is a small C shim over the classes libtorch exports (see its
//! header comment for how it stays within what the PyPI wheel ships).

mod env;
// The FFI to the C++ shim is this crate's reason to exist; every unsafe block says why it is sound.
#[allow(unsafe_code)]
mod ffi;
#[allow(unsafe_code)]
mod group;
mod sync;

pub use env::{Launch, VARS};
pub use group::{Backend, ProcessGroup, Reduce};
pub use sync::GradSync;

/// What can go wrong joining or using a group.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// The launch environment is incomplete or wrong (a usage error).
    #[error("{0}")]
    Env(String),
    /// The store could not be reached or the group not formed.
    #[error("rank {rank}: cannot join the process group through the store at {endpoint}: {msg}")]
    Store {
        /// `host:port`.
        endpoint: String,
        /// This rank.
        rank: usize,
        /// c10d's message.
        msg: String,
    },
    /// A collective failed (a peer died, a timeout).
    #[error("rank {rank}: {what} failed (another rank stopped or the network failed): {msg}")]
    Collective {
        /// This rank.
        rank: usize,
        /// The collective.
        what: String,
        /// c10d's message.
        msg: String,
    },
}
