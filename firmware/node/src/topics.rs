//! The node's topic layout.
//!
//! | topic | payload |
//! |---|---|
//! | `sensors/{device_id}/{quantity}` | a reading ([`crate::Record`] JSON), QoS 1 by default |
//! | `devices/{device_id}/status` | `online` (retained, at each connect) / `offline` (retained Last Will) |
//! | `devices/{device_id}/cmd/#` | commands to the device, subscribed at QoS 1 |

use core::fmt::Write;
use heapless::String;

use crate::Quantity;

/// Longest accepted device id.
pub const MAX_DEVICE_ID: usize = 32;
/// Capacity of every topic the node builds.
pub const TOPIC_CAPACITY: usize = 64;

pub type Topic = String<TOPIC_CAPACITY>;

/// Why a device id is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DeviceIdError {
    Empty,
    /// Longer than [`MAX_DEVICE_ID`] bytes.
    TooLong,
    /// Contains `/`, `+`, `#`, a NUL or a control character: it must be one topic level
    /// (and is also the MQTT client id).
    InvalidCharacter,
}

/// Checks that `id` can be one topic level and a client id.
pub fn validate_device_id(id: &str) -> Result<(), DeviceIdError> {
    if id.is_empty() {
        return Err(DeviceIdError::Empty);
    }
    if id.len() > MAX_DEVICE_ID {
        return Err(DeviceIdError::TooLong);
    }
    if id
        .chars()
        .any(|c| matches!(c, '/' | '+' | '#') || c.is_control())
    {
        return Err(DeviceIdError::InvalidCharacter);
    }
    Ok(())
}

/// `sensors/{device_id}/{quantity}`.
pub fn reading_topic(device_id: &str, quantity: Quantity) -> Topic {
    build(format_args!("sensors/{device_id}/{}", quantity.topic()))
}

/// `devices/{device_id}/status`.
pub fn status_topic(device_id: &str) -> Topic {
    build(format_args!("devices/{device_id}/status"))
}

/// `devices/{device_id}/cmd/#`.
pub fn command_filter(device_id: &str) -> Topic {
    build(format_args!("devices/{device_id}/cmd/#"))
}

/// The part of a command topic after `devices/{device_id}/cmd/`.
pub fn command_name<'t>(device_id: &str, topic: &'t str) -> Option<&'t str> {
    topic
        .strip_prefix("devices/")?
        .strip_prefix(device_id)?
        .strip_prefix("/cmd/")
}

/// A validated device id (at most [`MAX_DEVICE_ID`] bytes) and the longest quantity name
/// always fit in [`TOPIC_CAPACITY`].
fn build(args: core::fmt::Arguments<'_>) -> Topic {
    let mut topic = Topic::new();
    let fits = topic.write_fmt(args).is_ok();
    debug_assert!(fits, "topic capacity too small");
    topic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(
            reading_topic("kitchen", Quantity::Temperature),
            "sensors/kitchen/temperature"
        );
        assert_eq!(status_topic("kitchen"), "devices/kitchen/status");
        assert_eq!(command_filter("kitchen"), "devices/kitchen/cmd/#");
        assert_eq!(
            command_name("kitchen", "devices/kitchen/cmd/led"),
            Some("led")
        );
        assert_eq!(command_name("kitchen", "devices/kitchen2/cmd/led"), None);
    }

    #[test]
    fn device_ids() {
        assert_eq!(validate_device_id("node-1_a.b"), Ok(()));
        assert_eq!(validate_device_id(""), Err(DeviceIdError::Empty));
        for bad in ["a/b", "a+", "#", "a\0", "a\nb"] {
            assert_eq!(
                validate_device_id(bad),
                Err(DeviceIdError::InvalidCharacter),
                "{bad:?}"
            );
        }
        let long = "x".repeat(MAX_DEVICE_ID + 1);
        assert_eq!(validate_device_id(&long), Err(DeviceIdError::TooLong));
        let longest = "x".repeat(MAX_DEVICE_ID);
        assert!(reading_topic(&longest, Quantity::Illuminance).len() < TOPIC_CAPACITY);
        assert!(command_filter(&longest).len() < TOPIC_CAPACITY);
    }
}
