//! Per-thread scratch buffers (packed GEMM panels, im2col columns), reused across calls so that
//! an AdaRound or SeqMSE loop calling a layer thousands of times does not allocate each time.
//!
//! Buffers are taken out of the thread's pool and put back afterwards rather than borrowed in
//! place: a rayon worker blocked in a nested `join` may run another layer call on the same thread,
//! and that call then simply finds the pool empty (and allocates) instead of a held borrow.

use std::cell::RefCell;

/// Buffers kept per thread; more are dropped when returned.
const POOL_SIZE: usize = 4;
/// Buffers larger than this (in f32s, 64 MiB) are freed after use instead of kept.
const KEEP_MAX: usize = 16 << 20;

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a buffer of `len` f32s whose contents are unspecified (stale data from an
/// earlier use): callers overwrite what they read.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = POOL.with(|p| {
        let mut pool = p.borrow_mut();
        // Prefer a buffer that is already large enough.
        match pool.iter().position(|b| b.capacity() >= len) {
            Some(i) => pool.swap_remove(i),
            None => pool.pop().unwrap_or_default(),
        }
    });
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let result = f(&mut buf[..len]);
    if buf.capacity() <= KEEP_MAX {
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL_SIZE {
                pool.push(buf);
            }
        });
    }
    result
}
