//! A counting global allocator, for the `inproc-memory` benchmark.
//!
//! [`Counting`] wraps [`System`] and, while counting is switched on, adds every allocation's
//! requested size to one signed counter and subtracts every deallocation's. The difference
//! between two readings is the net growth of live heap bytes between them, across all threads
//! (the engine's worker threads and the tokio runtime included). Sizes are the ones asked for
//! (`Layout::size`), not what the system allocator rounds them up to.
//!
//! Counting is off by default: one shared atomic updated by every thread on every allocation
//! would bounce a cache line between the cores and slow down the throughput and latency
//! scenarios it does not concern. When off, the cost is one relaxed load per call.
//!
//! This is the crate's only `unsafe` code (see the lints in its `Cargo.toml`): `GlobalAlloc`
//! is an unsafe trait. Each method forwards its arguments unchanged to `System`, so the
//! caller's guarantees carry over as they are.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// [`System`] plus a net byte counter that runs while [`Counting::start`] is in effect.
#[derive(Debug)]
pub(crate) struct Counting {
    enabled: AtomicBool,
    net: AtomicIsize,
}

impl Counting {
    /// A switched-off counter.
    pub(crate) const fn new() -> Self {
        Counting { enabled: AtomicBool::new(false), net: AtomicIsize::new(0) }
    }

    /// Resets the counter to zero and switches counting on.
    pub(crate) fn start(&self) {
        self.net.store(0, Ordering::SeqCst);
        self.enabled.store(true, Ordering::SeqCst);
    }

    /// Net bytes allocated since [`Counting::start`] (negative when more was freed).
    pub(crate) fn net(&self) -> isize {
        self.net.load(Ordering::SeqCst)
    }

    /// Switches counting off; returns the final net count.
    pub(crate) fn stop(&self) -> isize {
        self.enabled.store(false, Ordering::SeqCst);
        self.net()
    }

    #[inline]
    fn add(&self, bytes: usize) {
        if self.enabled.load(Ordering::Relaxed) {
            self.net.fetch_add(isize::try_from(bytes).unwrap_or(isize::MAX), Ordering::Relaxed);
        }
    }

    #[inline]
    fn sub(&self, bytes: usize) {
        if self.enabled.load(Ordering::Relaxed) {
            self.net.fetch_sub(isize::try_from(bytes).unwrap_or(isize::MAX), Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the same arguments, which upholds the
// `GlobalAlloc` contract; the bookkeeping around it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` hold for `System` too.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            self.add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            self.add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this wrapper) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        self.sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller guarantees
        // `new_size` is valid for `layout.align()`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.sub(layout.size());
            self.add(new_size);
        }
        p
    }
}
