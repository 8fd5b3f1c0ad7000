//! memory.x on the linker path, the cortex-m-rt / embassy-rp / defmt linker scripts, and the
//! build-time settings the app bakes in.

use std::path::PathBuf;

/// (variable, example value) pairs the firmware reads with `env!`.
const REQUIRED_ENV: &[(&str, &str)] = &[
    ("MIDGE_WIFI_SSID", "my-network"),
    ("MIDGE_WIFI_PASSWORD", "correct horse battery staple"),
    (
        "MIDGE_BROKER",
        "192.168.1.10:1883 or broker.lan (port 1883 if omitted)",
    ),
    ("MIDGE_DEVICE_ID", "pico-w-1"),
];

fn main() {
    let missing: Vec<String> = REQUIRED_ENV
        .iter()
        .inspect(|(name, _)| println!("cargo:rerun-if-env-changed={name}"))
        .filter(|(name, _)| std::env::var_os(name).is_none_or(|v| v.is_empty()))
        .map(|(name, example)| format!("  {name} is not set, e.g. export {name}='{example}'"))
        .collect();
    if !missing.is_empty() {
        eprintln!("midge firmware settings missing:\n{}", missing.join("\n"));
        std::process::exit(1);
    }

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");

    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tlink-rp.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
