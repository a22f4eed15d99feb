//! The C functions of `csrc/c10d.cpp`. Tensors cross as tch's `C_tensor` (a `torch::Tensor*`).

use std::ffi::{c_char, c_int, c_long};

use torch_sys::C_tensor;

/// An opaque store and process group.
#[repr(C)]
pub struct BdGroup {
    _private: [u8; 0],
}

unsafe extern "C" {
    pub fn bd_free_str(s: *mut c_char);
    pub fn bd_has_nccl() -> c_int;
    #[allow(clippy::too_many_arguments)]
    pub fn bd_init(
        host: *const c_char,
        port: c_int,
        is_server: c_int,
        rank: c_int,
        world: c_int,
        prefix: *const c_char,
        backend: c_int,
        timeout_ms: c_long,
        out: *mut *mut BdGroup,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn bd_free(g: *mut BdGroup);
    pub fn bd_allreduce(g: *mut BdGroup, ts: *mut *mut C_tensor, n: c_int, op: c_int, err: *mut *mut c_char) -> c_int;
    pub fn bd_broadcast(g: *mut BdGroup, ts: *mut *mut C_tensor, n: c_int, root: c_int, err: *mut *mut c_char)
    -> c_int;
    pub fn bd_reduce_scatter(g: *mut BdGroup, out: *mut C_tensor, input: *mut C_tensor, err: *mut *mut c_char)
    -> c_int;
    pub fn bd_all_gather(g: *mut BdGroup, out: *mut C_tensor, input: *mut C_tensor, err: *mut *mut c_char) -> c_int;
    pub fn bd_barrier(g: *mut BdGroup, err: *mut *mut c_char) -> c_int;
}
