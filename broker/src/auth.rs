//! MQTT 5 enhanced authentication (section 4.12): the hook a challenge–response method
//! (SCRAM, Kerberos…) plugs into. A CONNECT naming a method the broker does not have is
//! refused with Bad authentication method (0x8C).

use std::fmt;

/// An authentication method, as named in CONNECT's Authentication Method.
pub trait AuthMethod: Send + Sync + fmt::Debug {
    fn name(&self) -> &str;

    /// Starts an exchange with a client (at CONNECT, or when it re-authenticates).
    fn start(&self, client_id: &str, username: Option<&str>) -> Box<dyn AuthExchange>;
}

/// One client's exchange, fed the Authentication Data of each CONNECT or AUTH packet.
pub trait AuthExchange: Send + fmt::Debug {
    fn step(&mut self, data: Option<&[u8]>) -> AuthStep;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Authenticated; the data (if any) goes to the client in CONNACK or AUTH.
    Accept(Option<Vec<u8>>),
    /// Send this challenge in AUTH (Continue authentication) and wait for the answer.
    Challenge(Vec<u8>),
    /// Not authenticated: CONNACK or DISCONNECT with Not authorized.
    Refuse,
}
