//! The CYW43439 firmware, country table (CLM) and board NVRAM, read in place from flash.
//!
//! They are Infineon's binaries, not ours to redistribute, and at 230 KiB they would triple the
//! image and every flash cycle: the user writes them once with `probe-rs download` (README.md)
//! from embassy's `cyw43-firmware/` at the tag `cyw43-v0.7.0`, the release matching our `cyw43`
//! dependency. Lengths are those files' sizes; the driver uploads exactly that many bytes.

use cyw43::{A4, Aligned};

pub struct Blob {
    pub name: &'static str,
    address: usize,
    len: usize,
}

pub const FIRMWARE: Blob = Blob {
    name: "43439A0.bin",
    address: 0x1010_0000,
    len: 231_077,
};
pub const CLM: Blob = Blob {
    name: "43439A0_clm.bin",
    address: 0x1014_0000,
    len: 984,
};
pub const NVRAM: Blob = Blob {
    name: "nvram_rp2040.bin",
    address: 0x1014_1000,
    len: 742,
};

impl Blob {
    /// The blob, or `None` when its first word is still erased flash (never downloaded).
    pub fn get(&self) -> Option<&'static Aligned<A4, [u8]>> {
        // SAFETY: XIP flash is memory-mapped read-only for the program's whole life, the
        // addresses are 4-aligned and the ranges lie inside the Pico W's 2 MiB flash above the
        // application's region (memory.x stops the app at 0x10100000). `Aligned<A4, [u8]>` is a
        // repr(C) wrapper around the slice, so the cast keeps the slice length.
        let bytes = unsafe {
            &*(core::ptr::slice_from_raw_parts(self.address as *const u8, self.len)
                as *const Aligned<A4, [u8]>)
        };
        (bytes.get(..4) != Some(&[0xff; 4][..])).then_some(bytes)
    }

    /// Panics with the command that fixes a missing blob.
    pub fn require(&self) -> &'static Aligned<A4, [u8]> {
        match self.get() {
            Some(bytes) => bytes,
            None => defmt::panic!(
                "{} not found at {=usize:#x}: probe-rs download {} --binary-format bin --chip RP2040 --base-address {=usize:#x}",
                self.name,
                self.address,
                self.name,
                self.address
            ),
        }
    }
}
