//! Polling into a filled `aether_event_stored` releases the strings it held. A counting
//! allocator shows it without a sanitizer; this binary holds one test so no other test's
//! allocations run concurrently.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::atomic::{AtomicIsize, Ordering};

use aether::*;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const EVENTS: usize = 2000;

#[test]
fn polling_into_a_filled_struct_releases_its_strings() {
    unsafe {
        let mut store: *mut aether_store = ptr::null_mut();
        assert_eq!(
            store::aether_store_open_memory(0, &mut store, ptr::null_mut()),
            aether_status::AETHER_OK
        );
        // Long IDs, so a leak of each notification's strings is unmistakable.
        let id_pad = "x".repeat(200);
        for v in 1..=EVENTS {
            let json = format!(
                r#"{{"id":"e{v}-{id_pad}","eventType":"T","actorId":"actor-{id_pad}","version":{v},"timestamp":"2024-01-02T03:04:05Z"}}"#
            );
            assert_eq!(
                events::aether_save_event(
                    store,
                    json.as_ptr(),
                    json.len(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut()
                ),
                aether_status::AETHER_OK
            );
        }
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        let mut n: aether_event_stored = std::mem::zeroed();
        let mut batch: [aether_event_stored; 4] = std::mem::zeroed();
        let mut count = 0usize;
        for i in 0..EVENTS / 2 {
            assert_eq!(
                event_stored::aether_poll_event_stored(store, 0, &mut n, ptr::null_mut()),
                aether_status::AETHER_OK
            );
            assert_eq!(n.sequence, i as u64 + 1);
        }
        for _ in 0..EVENTS / 2 / batch.len() {
            assert_eq!(
                event_stored::aether_poll_event_stored_batch(
                    store,
                    0,
                    batch.as_mut_ptr(),
                    batch.len(),
                    &mut count,
                    ptr::null_mut()
                ),
                aether_status::AETHER_OK
            );
            assert_eq!(count, batch.len());
        }
        assert_eq!(batch[3].sequence, EVENTS as u64);
        event_stored::aether_event_stored_clear(&mut n);
        event_stored::aether_event_stored_clear_batch(batch.as_mut_ptr(), batch.len());
        // The notifications' strings (~410 bytes each) were allocated before `before`;
        // each poll released the previous one's, and the clears the last ones. Had they
        // leaked, only the drained queue's storage (~90 bytes each) would be freed.
        let freed = before - LIVE_BYTES.load(Ordering::Relaxed);
        assert!(
            freed >= (EVENTS * 400) as isize,
            "only {freed} bytes freed by polling {EVENTS} notifications"
        );
        store::aether_store_free(store);
    }
}
