//! The board's side of the node: where readings come from, where commands go.

use crate::Sample;

/// Implemented by each board for its sensors.
pub trait Sensor {
    /// Takes one sample (an ADC conversion, an I²C transaction, …).
    fn sample(&mut self) -> impl Future<Output = Sample>;

    /// A message on `devices/{device_id}/cmd/{name}` (MQTT only). Ignored by default.
    fn command(&mut self, name: &str, payload: &[u8]) {
        let _ = (name, payload);
    }
}
