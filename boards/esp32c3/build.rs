//! The build-time settings (see ../build_settings.rs). Linker scripts come from esp-hal
//! through the rustflags in .cargo/config.toml, so this crate carries no memory.x.

include!("../build_settings.rs");

fn main() {
    write_settings(Link::WiFi);
}
