//! The build-time settings the app bakes in. Linker scripts come from esp-hal through the
//! rustflags in .cargo/config.toml, so this crate carries no memory.x.

/// (variable, example value) pairs the firmware reads with `env!`.
const REQUIRED_ENV: &[(&str, &str)] = &[
    ("MIDGE_WIFI_SSID", "my-network"),
    ("MIDGE_WIFI_PASSWORD", "correct horse battery staple"),
    (
        "MIDGE_BROKER",
        "192.168.1.10:1883 or broker.lan (port 1883 if omitted)",
    ),
    ("MIDGE_DEVICE_ID", "esp32c3-1"),
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
}
