// Build-time settings shared by every board crate: each board's build.rs does
// `include!("../build_settings.rs")` and calls `write_settings`. The settings come from
// environment variables so credentials never land in a file of the repository; they are
// checked here, with the node's own validation, so a typo fails the build with a message
// instead of a device that boots and stops.
//
// The generated `$OUT_DIR/settings.rs` holds typed constants (the port as a u16, optional
// MQTT credentials as Option) that the app includes.

use std::fmt::Write as _;

/// Whether the board needs Wi-Fi credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "each board's build script names only its own link"
)]
enum Link {
    Ethernet,
    WiFi,
}

/// Appended to the generated file: the one place that turns the settings into the node's
/// configuration, for every board.
const NODE_CONFIG: &str = r#"
/// The node's configuration from these settings; `seed` (from a hardware RNG) keeps
/// devices from reconnecting in lock step after a broker restart.
pub fn node_config(seed: u32) -> midge_node::NodeConfig<'static> {
    let mut config = midge_node::NodeConfig::new(DEVICE_ID, BROKER_HOST);
    config.mqtt_port = BROKER_PORT;
    config.username = MQTT_USERNAME;
    config.password = MQTT_PASSWORD.map(str::as_bytes);
    config.backoff.seed = seed;
    config
}
"#;

fn write_settings(link: Link) {
    let mut errors = Vec::new();
    let mut get = |name: &str, example: &str, required: bool| -> Option<String> {
        println!("cargo:rerun-if-env-changed={name}");
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Some(value),
            Ok(_) | Err(std::env::VarError::NotPresent) if !required => None,
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                errors.push(format!("{name} is not set, e.g. export {name}='{example}'"));
                None
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                errors.push(format!("{name} is not valid UTF-8"));
                None
            }
        }
    };

    let broker = get("MIDGE_BROKER", "192.168.1.10:1883", true);
    let device_id = get("MIDGE_DEVICE_ID", "kitchen-1", true);
    let username = get("MIDGE_MQTT_USERNAME", "sensor", false);
    let password = get("MIDGE_MQTT_PASSWORD", "secret", false);
    let wifi = (link == Link::WiFi).then(|| {
        (
            get("MIDGE_WIFI_SSID", "my-network", true),
            get("MIDGE_WIFI_PASSWORD", "correct horse battery staple", true),
        )
    });

    let mut code = String::new();
    if let Some(broker) = &broker {
        let (host, port) = match broker.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().ok().filter(|&p| p != 0)),
            None => (broker.as_str(), Some(1883)),
        };
        match port {
            Some(port) => {
                writeln!(code, "pub const BROKER_HOST: &str = {host:?};").unwrap();
                writeln!(code, "pub const BROKER_PORT: u16 = {port};").unwrap();
            }
            None => errors.push(format!(
                "MIDGE_BROKER={broker:?}: the port after ':' must be a number from 1 to 65535"
            )),
        }
        if let Some(id) = &device_id {
            let config = midge_node::NodeConfig::new(id, host);
            if let Err(e) = config.validate() {
                errors.push(format!(
                    "MIDGE_BROKER / MIDGE_DEVICE_ID rejected by midge-node: {e}"
                ));
            }
        }
    }
    if let Some(id) = &device_id {
        writeln!(code, "pub const DEVICE_ID: &str = {id:?};").unwrap();
    }
    writeln!(
        code,
        "pub const MQTT_USERNAME: Option<&str> = {username:?};"
    )
    .unwrap();
    writeln!(
        code,
        "pub const MQTT_PASSWORD: Option<&str> = {password:?};"
    )
    .unwrap();
    if let Some((ssid, passphrase)) = wifi {
        // WPA2-Personal limits: both radios' drivers reject anything else at run time.
        if let Some(ssid) = ssid {
            if ssid.len() > 32 {
                errors.push(format!(
                    "MIDGE_WIFI_SSID is {} bytes; an SSID has at most 32",
                    ssid.len()
                ));
            }
            writeln!(code, "pub const WIFI_SSID: &str = {ssid:?};").unwrap();
        }
        if let Some(passphrase) = passphrase {
            if !(8..=63).contains(&passphrase.len()) {
                errors.push(format!(
                    "MIDGE_WIFI_PASSWORD is {} bytes; a WPA2 passphrase has 8 to 63",
                    passphrase.len()
                ));
            }
            writeln!(code, "pub const WIFI_PASSWORD: &str = {passphrase:?};").unwrap();
        }
    }

    if !errors.is_empty() {
        eprintln!("\nmidge firmware settings are missing or invalid (see boards/README.md):");
        for error in &errors {
            eprintln!("  {error}");
        }
        eprintln!();
        std::process::exit(1);
    }
    code.push_str(NODE_CONFIG);
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("settings.rs"), code).expect("write settings.rs");
}
