//! A global allocator that survives hostile length prefixes.
//!
//! The codec sizes decoded arrays from the count on the wire
//! (`Vec::with_capacity(n)`), so a 21-byte request claiming two billion
//! topics asks for ~90 GB up front. The system allocator refuses that and
//! Rust aborts the process: one request would take the broker down. This
//! allocator serves allocations of 256 MiB and more with
//! `mmap(MAP_NORESERVE)` instead: address space is reserved, no memory is
//! committed, and the decoder fails on the short buffer long before it
//! touches more than a few pages. Smaller allocations go to the system
//! allocator unchanged.
//!
//! Binaries that decode requests install it:
//! `#[global_allocator] static ALLOC: ReserveLargeAllocations = ReserveLargeAllocations;`

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are reserved, not committed.
const LARGE: usize = 256 << 20;
/// mmap returns page-aligned memory; stricter alignments use the system allocator.
const PAGE: usize = 4096;

pub struct ReserveLargeAllocations;

fn is_large(size: usize, align: usize) -> bool {
    size >= LARGE && align <= PAGE
}

unsafe fn reserve(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions; failure is reported as MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

unsafe impl GlobalAlloc for ReserveLargeAllocations {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: see `reserve`.
            unsafe { reserve(layout.size()) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // Fresh anonymous mappings are zero-filled.
            // SAFETY: see `reserve`.
            unsafe { reserve(layout.size()) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: `ptr` came from `reserve` with this size (same layout).
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: `ptr` came from the system allocator with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let was_large = is_large(layout.size(), layout.align());
        let now_large = is_large(new_size, layout.align());
        if !was_large && !now_large {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the
        // caller guarantees it does not overflow when rounded).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: forwarded to our own alloc/dealloc, which pair correctly.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_reservations_succeed_and_small_ones_pass_through() {
        let a = ReserveLargeAllocations;
        unsafe {
            // 64 GiB: more than this machine's memory, reserved only.
            let huge = Layout::from_size_align(64 << 30, 8).unwrap();
            let p = a.alloc(huge);
            assert!(!p.is_null());
            *p = 7;
            *p.add((64 << 30) - 1) = 9;
            let p = a.realloc(p, huge, 1 << 20);
            assert_eq!(*p, 7);
            a.dealloc(p, Layout::from_size_align(1 << 20, 8).unwrap());

            let small = Layout::from_size_align(64, 8).unwrap();
            let q = a.alloc_zeroed(small);
            assert_eq!(*q, 0);
            let q = a.realloc(q, small, LARGE + 1);
            assert_eq!(*q, 0);
            a.dealloc(q, Layout::from_size_align(LARGE + 1, 8).unwrap());
        }
    }
}
