//! Shared pieces of the size-measurement binaries: a panic handler, a time driver that
//! reads an opaque counter, and an opaque byte source so the optimiser cannot see inputs.
#![no_std]

use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Input the optimiser knows nothing about.
pub static INPUT: [u8; 256] = [0; 256];

pub fn input(len: usize) -> &'static [u8] {
    let all: &'static [u8] = black_box(&INPUT);
    &all[..black_box(len).min(all.len())]
}

static TICKS: AtomicU32 = AtomicU32::new(0);

struct CounterDriver;

impl embassy_time_driver::Driver for CounterDriver {
    fn now(&self) -> u64 {
        TICKS.fetch_add(1, Ordering::Relaxed).into()
    }

    fn schedule_wake(&self, _at: u64, waker: &core::task::Waker) {
        waker.wake_by_ref();
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: CounterDriver = CounterDriver);
