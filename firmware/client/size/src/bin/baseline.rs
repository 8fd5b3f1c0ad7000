//! The same frame as the other binaries with no client: subtract its size.
#![no_std]
#![no_main]

use core::hint::black_box;
use midge_client_size as _;

#[cortex_m_rt::entry]
fn main() -> ! {
    loop {
        black_box(midge_client_size::input(black_box(16)));
    }
}
