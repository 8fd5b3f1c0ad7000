//! AUTH: the steps of MQTT 5 enhanced authentication, at CONNECT and when a connected
//! client re-authenticates (section 4.12).

use bytes::Bytes;
use midge_wire::{
    Auth, DecodeOptions, Decoded, List, Packet, Property, ProtocolVersion, ReasonCode, decode,
};
use tracing::info;

use super::{Closing, Connection};
use crate::auth::{AuthExchange, AuthStep};

/// An exchange waiting for the client's next AUTH.
#[derive(Debug)]
pub(super) struct PendingAuth {
    pub(super) method: Box<str>,
    pub(super) exchange: Box<dyn AuthExchange>,
    /// The CONNECT to accept when the exchange succeeds; `None` when re-authenticating.
    pub(super) connect: Option<Bytes>,
}

impl Connection {
    pub(super) fn on_auth(&mut self, auth: &Auth<'_>) -> Result<(), Closing> {
        let method = auth.properties.authentication_method();
        let data = auth.properties.authentication_data();
        let pending = match (self.pending_auth.take(), auth.reason) {
            (Some(pending), ReasonCode::ContinueAuthentication) => *pending,
            (None, ReasonCode::ReAuthenticate) if self.state.is_some() => {
                let connected = self.state.as_ref().expect("checked above");
                let (Some(name), Some(method)) = (
                    connected.auth_method.as_deref(),
                    connected
                        .auth_method
                        .as_deref()
                        .and_then(|m| self.broker.auth_method(m)),
                ) else {
                    return Err(Closing::protocol(
                        ReasonCode::ProtocolError,
                        "re-authentication without an authentication method",
                    ));
                };
                let client = &connected.session.client_id;
                PendingAuth {
                    method: name.into(),
                    exchange: method.start(client, None),
                    connect: None,
                }
            }
            _ => {
                return Err(Closing::protocol(
                    ReasonCode::ProtocolError,
                    "unexpected AUTH",
                ));
            }
        };
        if method != Some(&*pending.method) {
            // [MQTT-4.12.0-5]: the method stays the same through the exchange.
            return Err(Closing::protocol(
                ReasonCode::ProtocolError,
                "authentication method changed",
            ));
        }
        let mut pending = pending;
        let step = pending.exchange.step(data);
        self.auth_step(step, pending)
    }

    /// Carries out one step of an exchange.
    pub(super) fn auth_step(
        &mut self,
        step: AuthStep,
        pending: PendingAuth,
    ) -> Result<(), Closing> {
        let method = Property::AuthenticationMethod(&pending.method);
        match step {
            AuthStep::Challenge(data) => {
                let properties = [method, Property::AuthenticationData(&data)];
                let auth = Auth {
                    reason: ReasonCode::ContinueAuthentication,
                    properties: List::new(&properties),
                };
                self.send_in(ProtocolVersion::V5, Packet::Auth(auth));
                self.pending_auth = Some(Box::new(pending));
                Ok(())
            }
            AuthStep::Accept(data) => {
                let mut properties = vec![method];
                properties.extend(data.as_deref().map(Property::AuthenticationData));
                let Some(stored) = &pending.connect else {
                    let auth = Auth {
                        reason: ReasonCode::Success,
                        properties: List::new(&properties),
                    };
                    self.send_in(ProtocolVersion::V5, Packet::Auth(auth));
                    return Ok(());
                };
                match decode(stored, &DecodeOptions::default()) {
                    Ok(Decoded::Complete {
                        packet: Packet::Connect(connect),
                        ..
                    }) => self.accept(&connect, &properties),
                    _ => Err(Closing::protocol(
                        ReasonCode::ImplementationSpecificError,
                        "stored CONNECT lost",
                    )),
                }
            }
            AuthStep::Refuse => match &pending.connect {
                Some(stored) => match decode(stored, &DecodeOptions::default()) {
                    Ok(Decoded::Complete {
                        packet: Packet::Connect(connect),
                        ..
                    }) => Err(self.refuse(&connect, ReasonCode::NotAuthorized)),
                    _ => Err(Closing::Refused(ReasonCode::NotAuthorized)),
                },
                None => {
                    info!("re-authentication with {} refused", pending.method);
                    Err(Closing::protocol(
                        ReasonCode::NotAuthorized,
                        "re-authentication refused",
                    ))
                }
            },
        }
    }
}
