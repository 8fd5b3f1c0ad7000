//! Linker scripts for cortex-m-rt and defmt, and the build-time settings the app bakes in.
//! embassy-stm32's `memory-x` feature writes memory.x, so this crate carries none.

/// (variable, example value) pairs the firmware reads with `env!`.
const REQUIRED_ENV: &[(&str, &str)] = &[
    (
        "MIDGE_BROKER",
        "192.168.1.10:1883 or broker.lan (port 1883 if omitted)",
    ),
    ("MIDGE_DEVICE_ID", "nucleo-1"),
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

    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
