//! A tiny pseudo-random generator for jitter (reconnect back-off, CoAP timeouts, message
//! ids). Not for anything secret.

/// xorshift32.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rng(u32);

impl Rng {
    /// Zero, which xorshift would never leave, is replaced by a fixed constant.
    pub const fn new(seed: u32) -> Self {
        Self(if seed == 0 { 0x9e37_79b9 } else { seed })
    }

    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}
