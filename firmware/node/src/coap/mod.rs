//! Publishing readings over CoAP to midge's gateway, for devices that prefer UDP.
//!
//! Each reading is a confirmable `POST /ps/sensors/{device_id}/{quantity}` with
//! Content-Format `application/json` and the same JSON payload as over MQTT; the gateway
//! publishes it at QoS 1 and answers 2.04 once the broker has it. `online` is POSTed to
//! `/ps/devices/{device_id}/status?retain=true` until the gateway accepts it once (CoAP has
//! no will: there is no `offline`). Requests go one at a time (NSTART = 1) and are
//! retransmitted per RFC 7252 (2–3 s, doubling, 4 retransmissions). While a request is
//! being retried the node does not sample; samples it misses show as gaps in `seq`.

pub mod exchange;
pub mod message;
#[cfg(feature = "embassy-net")]
mod task;

#[cfg(feature = "embassy-net")]
pub use task::run;
