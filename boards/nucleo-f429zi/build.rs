//! Linker scripts for cortex-m-rt and defmt, and the build-time settings (see
//! ../build_settings.rs). embassy-stm32's `memory-x` feature writes memory.x, so this crate
//! carries none.

include!("../build_settings.rs");

fn main() {
    write_settings(Link::Ethernet);
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
