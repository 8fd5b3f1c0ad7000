//! CONNECT: checks, session attach or takeover, CONNACK with what the broker offers.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use midge_wire::{
    Connack, Connect, DecodeOptions, Decoded, List, MAX_PACKET_SIZE, Packet, Properties, Property,
    ProtocolVersion, ReasonCode, decode,
};
use tracing::info;

use super::deliver::OutAliases;
use super::{Closing, Connected, Connection, PendingAuth};
use crate::security::access::ListenerAccess;
use crate::security::acl::Access;
use crate::session::Owner;
use crate::signal::Raised;
use crate::will::Will;

impl Connection {
    pub(super) fn on_connect(&mut self, connect: &Connect<'_>) -> Result<(), Closing> {
        if let Some(reason) = self.refusal(connect) {
            return Err(self.refuse(connect, reason));
        }
        if let Some(from_certificate) = self.certificate_username.as_deref().cloned() {
            // As Mosquitto's use_identity_as_username: the certificate authenticates the
            // client; CONNECT's user name and password are not used.
            let Some(name) = from_certificate else {
                return Err(self.refuse(connect, ReasonCode::NotAuthorized));
            };
            let connect = Connect {
                username: Some(&name),
                password: None,
                ..*connect
            };
            return self.authenticated(&connect);
        }
        if let Some(username) = connect.username
            && self.access.checks_passwords()
        {
            // Checking the password can take tens of milliseconds on a small board: the
            // shell runs it off the async workers and calls `on_password_checked`.
            let check = PasswordCheck {
                access: Arc::clone(&self.access),
                username: username.into(),
                password: connect.password.unwrap_or_default().to_vec(),
            };
            self.waiting = Some(Box::new(Waiting {
                connect: stored(connect)?,
                check: Some(check),
            }));
            return Ok(());
        }
        if !self
            .access
            .authenticate(connect.username, connect.password, self.allow_anonymous)
        {
            return Err(self.refuse(connect, credentials_refused(connect)));
        }
        self.authenticated(connect)
    }

    /// The CONNECT held while its password was checked goes on, or is refused.
    pub fn on_password_checked(
        &mut self,
        check: PasswordCheck,
        valid: bool,
    ) -> Result<(), Closing> {
        if self.state.is_some() {
            // A re-check after the password file was reloaded.
            return if valid {
                Ok(())
            } else {
                Err(Closing::protocol(
                    ReasonCode::NotAuthorized,
                    "credentials no longer valid after reload",
                ))
            };
        }
        let Some(waiting) = self.waiting.take() else {
            return Ok(());
        };
        let connect = match decode(&waiting.connect, &DecodeOptions::default()) {
            Ok(Decoded::Complete {
                packet: Packet::Connect(connect),
                ..
            }) => connect,
            _ => {
                return Err(Closing::protocol(
                    ReasonCode::ImplementationSpecificError,
                    "stored CONNECT lost",
                ));
            }
        };
        if !valid {
            return Err(self.refuse(&connect, credentials_refused(&connect)));
        }
        self.authenticated(&connect)?;
        // Kept to check again when the password file is reloaded (Mosquitto keeps them too).
        self.credentials = Some(Box::new(check));
        Ok(())
    }

    /// After the password file was reloaded: the check to run again for this client, if it
    /// authenticated with a password.
    pub fn recheck_password(&self) -> Option<PasswordCheck> {
        self.state
            .as_ref()
            .and(self.credentials.as_deref().cloned())
    }

    /// The password check the shell has to run, once.
    pub fn take_password_check(&mut self) -> Option<PasswordCheck> {
        self.waiting.as_mut().and_then(|w| w.check.take())
    }

    /// Whether CONNECT waits for its password check: packets after it must wait too.
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    /// Credentials are good: enhanced authentication if the client asks for it, then accept.
    fn authenticated(&mut self, connect: &Connect<'_>) -> Result<(), Closing> {
        let Some(name) = connect.properties.authentication_method() else {
            return self.accept(connect, &[]);
        };
        let Some(method) = self.broker.auth_method(name) else {
            return Err(self.refuse(connect, ReasonCode::BadAuthenticationMethod));
        };
        let mut exchange = method.start(connect.client_id, connect.username);
        let step = exchange.step(connect.properties.authentication_data());
        // Kept whole until the exchange ends: CONNECT is handled then, as if just received.
        let pending = PendingAuth {
            method: name.into(),
            exchange,
            connect: Some(stored(connect)?),
        };
        self.auth_step(step, pending)
    }

    pub(super) fn refuse(&mut self, connect: &Connect<'_>, reason: ReasonCode) -> Closing {
        let connack = Connack {
            session_present: false,
            reason,
            properties: Properties::EMPTY,
        };
        self.send_in(connect.version, Packet::Connack(connack));
        info!(
            "Refused client {} from {} ({reason:?}).",
            connect.client_id, self.peer
        );
        Closing::Refused(reason)
    }

    /// Accepts the CONNECT: attaches the session and sends CONNACK (with `auth`, the
    /// outcome of enhanced authentication, if any).
    pub(super) fn accept(
        &mut self,
        connect: &Connect<'_>,
        auth: &[Property<'_>],
    ) -> Result<(), Closing> {
        let version = connect.version;
        let limits = &self.broker.limits;
        let props = &connect.properties;
        let assigned = connect.client_id.is_empty().then(generate_client_id);
        let client_id = assigned.as_deref().unwrap_or(connect.client_id);
        let expiry = match (version.is_v5(), connect.clean_start) {
            (true, _) => props.session_expiry_interval().unwrap_or(0),
            (false, true) => 0,
            (false, false) => u32::MAX,
        };
        // MQTT 5 clients are told the keep-alive to use instead (Server Keep Alive).
        let max = limits.max_keepalive;
        let keep_alive = if version.is_v5() && (connect.keep_alive == 0 || connect.keep_alive > max)
        {
            max
        } else {
            connect.keep_alive
        };
        let identity = self.access.identity(connect.username);
        if let Some(will) = &connect.will
            && !identity.allows(client_id, will.topic, Access::Write)
        {
            // The will could never be published: refuse now, as Mosquitto does.
            return Err(self.refuse(connect, ReasonCode::NotAuthorized));
        }
        let owner = Owner {
            connection_id: self.id,
            signal: Arc::clone(&self.signal),
        };
        let attached = self
            .broker
            .attach(client_id, connect.clean_start, expiry, owner);
        if let Some(previous) = attached.previous_owner {
            previous.signal.raise(Raised::TakenOver);
        }
        let session = attached.session;
        session.state().identity = Some(identity.clone());
        let will = connect
            .will
            .map(|w| Box::new(Will::from_connect(&w, version, &session.client_id)));

        let receive_maximum = u16::try_from(limits.max_inflight_messages).unwrap_or(u16::MAX);
        let response_information = format!("response/{client_id}");
        let mut properties = auth.to_vec();
        if version.is_v5() {
            if let Some(id) = &assigned {
                properties.push(Property::AssignedClientIdentifier(id));
            }
            if keep_alive != connect.keep_alive {
                properties.push(Property::ServerKeepAlive(keep_alive));
            }
            if receive_maximum < u16::MAX {
                properties.push(Property::ReceiveMaximum(receive_maximum));
            }
            if limits.max_topic_alias > 0 {
                properties.push(Property::TopicAliasMaximum(limits.max_topic_alias));
            }
            if !limits.retain_available {
                properties.push(Property::RetainAvailable(false));
            }
            if limits.max_packet_size < MAX_PACKET_SIZE as u32 {
                properties.push(Property::MaximumPacketSize(limits.max_packet_size));
            }
            if props.request_response_information() == Some(true) {
                // A topic prefix the client may use for responses to its requests.
                properties.push(Property::ResponseInformation(&response_information));
            }
        }
        let connack = Connack {
            session_present: attached.session_present,
            reason: ReasonCode::Success,
            properties: List::new(&properties),
        };
        self.send_in(version, Packet::Connack(connack));
        self.broker.stats.client_connected();
        info!(
            "New client connected from {} as {client_id} (p{}, c{}, k{}{}).",
            self.peer,
            version.level(),
            u8::from(connect.clean_start),
            keep_alive,
            connect
                .username
                .map(|u| format!(", u'{u}'"))
                .unwrap_or_default(),
        );
        let aliases_out = OutAliases::new(props.topic_alias_maximum().unwrap_or(0));
        self.state = Some(Connected {
            session,
            version,
            keep_alive,
            will,
            receive_maximum: props.receive_maximum().unwrap_or(u16::MAX),
            max_packet_size: props
                .maximum_packet_size()
                .unwrap_or(MAX_PACKET_SIZE as u32),
            problem_information: props.request_problem_information().unwrap_or(true),
            aliases_in: Vec::new(),
            aliases_out,
            auth_method: props.authentication_method().map(Box::from),
            identity,
        });
        if attached.session_present {
            self.resend_inflight();
        }
        Ok(())
    }

    /// Why this CONNECT is refused, if it is.
    fn refusal(&self, connect: &Connect<'_>) -> Option<ReasonCode> {
        let version = connect.version;
        if connect.client_id.is_empty()
            && !version.is_v5()
            && (!connect.clean_start || version == ProtocolVersion::V3_1)
        {
            // [MQTT-3.1.3-8]: an empty id needs clean session (3.1 has no empty ids).
            return Some(ReasonCode::ClientIdentifierNotValid);
        }
        if !version.is_v5() && connect.keep_alive > self.broker.limits.max_keepalive {
            // 3.x cannot be told another keep-alive; Mosquitto refuses it this way too.
            return Some(ReasonCode::ClientIdentifierNotValid);
        }
        None
    }
}

/// A password check to run off the async workers ([`Connection::take_password_check`]).
#[derive(Debug, Clone)]
pub struct PasswordCheck {
    access: Arc<ListenerAccess>,
    username: Box<str>,
    password: Vec<u8>,
}

impl PasswordCheck {
    pub fn run(&self) -> bool {
        self.access.verify_password(&self.username, &self.password)
    }
}

/// A CONNECT held until its password check is done.
#[derive(Debug)]
pub(super) struct Waiting {
    connect: Bytes,
    /// Until the shell takes it.
    check: Option<PasswordCheck>,
}

/// CONNECT kept as bytes while something outside the connection decides on it.
fn stored(connect: &Connect<'_>) -> Result<Bytes, Closing> {
    let mut stored = BytesMut::new();
    Packet::Connect(*connect)
        .encode_to(connect.version, &mut stored)
        .map_err(|e| Closing::protocol(ReasonCode::ImplementationSpecificError, e.to_string()))?;
    Ok(stored.freeze())
}

/// As Mosquitto: "bad user name or password" for MQTT 5, "not authorised" for 3.x.
fn credentials_refused(connect: &Connect<'_>) -> ReasonCode {
    if connect.version.is_v5() && connect.username.is_some() {
        ReasonCode::BadUserNameOrPassword
    } else {
        ReasonCode::NotAuthorized
    }
}

/// A client id for a client that sent none, unique for the broker's lifetime.
fn generate_client_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    // RandomState is seeded randomly per instance: a cheap source of unpredictable bits.
    let a = RandomState::new().hash_one(0u8);
    let b = RandomState::new().hash_one(1u8);
    format!("auto-{a:016x}{b:016x}")
}
