//! The broker starts, accepts a client and routes one message.

use midge_e2e::Midge;

#[test]
fn mosquitto_clients_round_trip_a_message() {
    let midge = Midge::start();
    let mut sub = midge.mosquitto_sub(&["-t", "smoke/#", "-C", "1", "-W", "10", "-v"]);
    assert!(midge.wait_for_log("subscribed to smoke/#"));
    let out = midge.mosquitto_pub(&["-t", "smoke/1", "-m", "hello"]);
    assert!(out.status.success(), "{out:?}");
    let mut text = String::new();
    std::io::Read::read_to_string(sub.stdout.as_mut().unwrap(), &mut text).unwrap();
    assert!(sub.wait().unwrap().success());
    assert_eq!(text, "smoke/1 hello\n");
}
