//! Typed sensor readings and their JSON form.
//!
//! One reading is published per quantity, on `sensors/{device_id}/{quantity}`, as
//!
//! ```json
//! {"t":21.5,"seq":42,"up":3600}
//! ```
//!
//! * the quantity's short key (`t`, `rh`, `p`, …, see [`Quantity::key`]) and its value in
//!   the quantity's unit (see [`Quantity::unit`]);
//! * `seq`: the sample number, counted from 0 at boot; every reading of one sample has the
//!   same `seq`, and consecutive samples differ by one, so a subscriber sees lost messages
//!   as gaps;
//! * `up`: seconds since boot when the sample was taken (a reboot shows as `up` and `seq`
//!   starting again from small values).

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// What a reading measures. The topic level, JSON key and unit of each are fixed here so
/// that every board publishes the same schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Quantity {
    /// Degrees Celsius.
    Temperature,
    /// Relative humidity, percent.
    Humidity,
    /// Hectopascal.
    Pressure,
    /// Lux.
    Illuminance,
    /// Volts (supply or battery).
    Voltage,
    /// CO₂, parts per million.
    Co2,
}

impl Quantity {
    /// The last topic level: `sensors/{device_id}/{topic}`.
    pub const fn topic(self) -> &'static str {
        match self {
            Self::Temperature => "temperature",
            Self::Humidity => "humidity",
            Self::Pressure => "pressure",
            Self::Illuminance => "illuminance",
            Self::Voltage => "voltage",
            Self::Co2 => "co2",
        }
    }

    /// The JSON key of the value.
    pub const fn key(self) -> &'static str {
        match self {
            Self::Temperature => "t",
            Self::Humidity => "rh",
            Self::Pressure => "p",
            Self::Illuminance => "lux",
            Self::Voltage => "v",
            Self::Co2 => "co2",
        }
    }

    pub const fn unit(self) -> &'static str {
        match self {
            Self::Temperature => "°C",
            Self::Humidity => "%",
            Self::Pressure => "hPa",
            Self::Illuminance => "lx",
            Self::Voltage => "V",
            Self::Co2 => "ppm",
        }
    }
}

/// One measured value.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reading {
    pub quantity: Quantity,
    pub value: f32,
}

/// At most this many readings per sample.
pub const MAX_READINGS: usize = 4;

/// The readings of one sample, all published with the same sequence number.
pub type Sample = heapless::Vec<Reading, MAX_READINGS>;

/// Capacity of one JSON payload: the longest key, a float, a `u32` and a `u64` fit.
pub const PAYLOAD_CAPACITY: usize = 80;

/// A reading with its sample's metadata, serialised as the documented JSON object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    pub reading: Reading,
    pub seq: u32,
    pub uptime_secs: u64,
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("Record", 3)?;
        out.serialize_field(self.reading.quantity.key(), &self.reading.value)?;
        out.serialize_field("seq", &self.seq)?;
        out.serialize_field("up", &self.uptime_secs)?;
        out.end()
    }
}

/// Why a reading could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// NaN or infinite: JSON has no such numbers, so the reading is not published.
    NotFinite,
    /// Cannot happen with [`PAYLOAD_CAPACITY`]; kept so the function never panics.
    TooLong,
}

impl Record {
    /// The JSON payload.
    pub fn to_json(&self) -> Result<heapless::Vec<u8, PAYLOAD_CAPACITY>, EncodeError> {
        if !self.reading.value.is_finite() {
            return Err(EncodeError::NotFinite);
        }
        serde_json_core::to_vec(self).map_err(|_| EncodeError::TooLong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(quantity: Quantity, value: f32, seq: u32, up: u64) -> std::string::String {
        let record = Record {
            reading: Reading { quantity, value },
            seq,
            uptime_secs: up,
        };
        std::string::String::from_utf8(record.to_json().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn documented_schema() {
        assert_eq!(
            json(Quantity::Temperature, 21.5, 42, 3600),
            r#"{"t":21.5,"seq":42,"up":3600}"#
        );
        assert_eq!(
            json(Quantity::Humidity, 40.1, 0, 0),
            r#"{"rh":40.1,"seq":0,"up":0}"#
        );
        assert_eq!(
            json(Quantity::Pressure, -1013.25, u32::MAX, u64::MAX),
            r#"{"p":-1013.25,"seq":4294967295,"up":18446744073709551615}"#
        );
    }

    #[test]
    fn longest_payload_fits() {
        let s = json(Quantity::Co2, -f32::MAX, u32::MAX, u64::MAX);
        assert!(s.len() <= PAYLOAD_CAPACITY, "{s}");
        let s = json(
            Quantity::Illuminance,
            -f32::MIN_POSITIVE,
            u32::MAX,
            u64::MAX,
        );
        assert!(s.len() <= PAYLOAD_CAPACITY, "{s}");
    }

    #[test]
    fn non_finite_values_are_refused() {
        for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let record = Record {
                reading: Reading {
                    quantity: Quantity::Temperature,
                    value,
                },
                seq: 1,
                uptime_secs: 1,
            };
            assert_eq!(record.to_json(), Err(EncodeError::NotFinite));
        }
    }
}
