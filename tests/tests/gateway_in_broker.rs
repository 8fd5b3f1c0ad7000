//! The CoAP gateway inside the broker's process: a `[coap]` table in midge TOML is all a
//! Pi needs to serve MQTT and CoAP with one service.

use std::process::Command;

use midge_e2e::gateway::coap_client;
use midge_e2e::{Midge, MosquittoSub, temp_file, unique_client_id};

#[test]
fn coap_table_runs_the_gateway_in_the_broker() {
    let config = temp_file("in-broker.toml", "[coap]\nlisten = \"127.0.0.1:0\"\n");
    let mut midge = Midge::start_with(&["-c", config.to_str().expect("UTF-8 path")]);
    let port = midge.logged_port("CoAP gateway listening on udp 127.0.0.1:");
    let id = unique_client_id("in-broker");
    let sub = MosquittoSub::start(
        &midge,
        &id,
        "sensors/#",
        &["-t", "sensors/#", "-v", "-C", "1"],
    );
    let run = coap_client(&[
        "-m",
        "put",
        &format!("coap://127.0.0.1:{port}/ps/sensors/kitchen/temp"),
        "-e",
        "21.5",
    ]);
    assert_eq!(run.code(), "2.04", "{}", run.dump);
    assert_eq!(sub.text(), "sensors/kitchen/temp 21.5\n");
    let _ = std::fs::remove_file(config);
}

#[test]
fn a_bad_coap_key_names_the_file_and_line() {
    let config = temp_file(
        "bad-coap.toml",
        "sys_interval = 10\n[coap]\nlisten = \"127.0.0.1:0\"\nblock_sise = 64\n",
    );
    let out = Command::new(midge_e2e::midge_binary())
        .args(["--test-config", "-c"])
        .arg(&config)
        .output()
        .expect("run midge");
    let _ = std::fs::remove_file(&config);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad-coap.toml")
            && stderr.contains("bad-coap.toml:2:")
            && stderr.contains("block_sise"),
        "{stderr}"
    );
}
