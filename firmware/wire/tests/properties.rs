//! Property tests of the wire codec, through its public API only.
//!
//! For MQTT 3.1, 3.1.1 and 5.0:
//!
//! 1. Round trip: every valid packet of every type encodes to `encoded_len` bytes (into a
//!    slice and, with the `bytes` feature, into a `BytesMut`), and decodes back to itself.
//! 2. Streaming: every strict prefix of an encoding is `Incomplete` (with the frame length
//!    once the fixed header is in), and concatenated packets decode one after the other.
//! 3. Robustness: `decode` never panics on arbitrary or mutated input, and whatever it
//!    accepts re-encodes to a packet that decodes to the same value.
//! 4. Topics: name/filter validation and matching agree with independent reference models.
//!
//! Packets borrow, so the strategies generate owned models ([`Model`], [`OwnedProp`]) and
//! each test builds the borrowed [`Packet`] from them.
//!
//! Run with `cargo test -p midge-wire --features bytes --test properties` (CI passes
//! `--features midge-wire/bytes`); without the feature the `BytesMut` check is compiled out.

use midge_wire::topic;
use midge_wire::{
    Ack, Auth, Connack, Connect, DecodeError, DecodeOptions, Decoded, Disconnect, EncodeError,
    List, MAX_PACKET_SIZE, MAX_VARINT, Packet, PacketType, Properties, Property, PropertyId,
    ProtocolVersion, Publish, QoS, QosPid, ReasonCode, RetainHandling, Suback, Subscribe,
    Subscription, SubscriptionOptions, Unsuback, Unsubscribe, Will, decode,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;
use proptest::test_runner::TestCaseError;

type TestResult = Result<(), TestCaseError>;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

/// The largest packet the decoder can be told to accept.
const LARGE_MAX: u32 = MAX_PACKET_SIZE as u32;
/// A maximum packet size most generated packets exceed.
const SMALL_MAX: u32 = 24;

fn opts(version: ProtocolVersion) -> DecodeOptions {
    DecodeOptions {
        version,
        max_packet_size: LARGE_MAX,
    }
}

// ---------------------------------------------------------------------------------------
// Owned models of packets
// ---------------------------------------------------------------------------------------

/// Every MQTT 5 property identifier.
const ALL_PROPERTY_IDS: [PropertyId; 27] = {
    use PropertyId::*;
    [
        PayloadFormatIndicator,
        MessageExpiryInterval,
        ContentType,
        ResponseTopic,
        CorrelationData,
        SubscriptionIdentifier,
        SessionExpiryInterval,
        AssignedClientIdentifier,
        ServerKeepAlive,
        AuthenticationMethod,
        AuthenticationData,
        RequestProblemInformation,
        WillDelayInterval,
        RequestResponseInformation,
        ResponseInformation,
        ServerReference,
        ReasonString,
        ReceiveMaximum,
        TopicAliasMaximum,
        TopicAlias,
        MaximumQoS,
        RetainAvailable,
        UserProperty,
        MaximumPacketSize,
        WildcardSubscriptionAvailable,
        SubscriptionIdentifierAvailable,
        SharedSubscriptionAvailable,
    ]
};

/// A [`Property`] that owns its strings and bytes.
#[derive(Clone, Debug, PartialEq)]
enum OwnedProp {
    PayloadFormatIndicator(bool),
    MessageExpiryInterval(u32),
    ContentType(String),
    ResponseTopic(String),
    CorrelationData(Vec<u8>),
    SubscriptionIdentifier(u32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(String),
    ServerKeepAlive(u16),
    AuthenticationMethod(String),
    AuthenticationData(Vec<u8>),
    RequestProblemInformation(bool),
    WillDelayInterval(u32),
    RequestResponseInformation(bool),
    ResponseInformation(String),
    ServerReference(String),
    ReasonString(String),
    ReceiveMaximum(u16),
    TopicAliasMaximum(u16),
    TopicAlias(u16),
    MaximumQoS(QoS),
    RetainAvailable(bool),
    UserProperty(String, String),
    MaximumPacketSize(u32),
    WildcardSubscriptionAvailable(bool),
    SubscriptionIdentifierAvailable(bool),
    SharedSubscriptionAvailable(bool),
}

impl OwnedProp {
    fn borrow(&self) -> Property<'_> {
        use OwnedProp as O;
        use Property as P;
        match self {
            O::PayloadFormatIndicator(v) => P::PayloadFormatIndicator(*v),
            O::MessageExpiryInterval(v) => P::MessageExpiryInterval(*v),
            O::ContentType(v) => P::ContentType(v),
            O::ResponseTopic(v) => P::ResponseTopic(v),
            O::CorrelationData(v) => P::CorrelationData(v),
            O::SubscriptionIdentifier(v) => P::SubscriptionIdentifier(*v),
            O::SessionExpiryInterval(v) => P::SessionExpiryInterval(*v),
            O::AssignedClientIdentifier(v) => P::AssignedClientIdentifier(v),
            O::ServerKeepAlive(v) => P::ServerKeepAlive(*v),
            O::AuthenticationMethod(v) => P::AuthenticationMethod(v),
            O::AuthenticationData(v) => P::AuthenticationData(v),
            O::RequestProblemInformation(v) => P::RequestProblemInformation(*v),
            O::WillDelayInterval(v) => P::WillDelayInterval(*v),
            O::RequestResponseInformation(v) => P::RequestResponseInformation(*v),
            O::ResponseInformation(v) => P::ResponseInformation(v),
            O::ServerReference(v) => P::ServerReference(v),
            O::ReasonString(v) => P::ReasonString(v),
            O::ReceiveMaximum(v) => P::ReceiveMaximum(*v),
            O::TopicAliasMaximum(v) => P::TopicAliasMaximum(*v),
            O::TopicAlias(v) => P::TopicAlias(*v),
            O::MaximumQoS(v) => P::MaximumQoS(*v),
            O::RetainAvailable(v) => P::RetainAvailable(*v),
            O::UserProperty(k, v) => P::UserProperty(k, v),
            O::MaximumPacketSize(v) => P::MaximumPacketSize(*v),
            O::WildcardSubscriptionAvailable(v) => P::WildcardSubscriptionAvailable(*v),
            O::SubscriptionIdentifierAvailable(v) => P::SubscriptionIdentifierAvailable(*v),
            O::SharedSubscriptionAvailable(v) => P::SharedSubscriptionAvailable(*v),
        }
    }
}

#[derive(Clone, Debug)]
struct WillModel {
    qos: QoS,
    retain: bool,
    properties: Vec<OwnedProp>,
    topic: String,
    payload: Vec<u8>,
}

#[derive(Clone, Debug)]
struct ConnectModel {
    version: ProtocolVersion,
    clean_start: bool,
    keep_alive: u16,
    properties: Vec<OwnedProp>,
    client_id: String,
    will: Option<WillModel>,
    username: Option<String>,
    password: Option<Vec<u8>>,
}

/// An owned description of one packet; [`Model::packet`] gives the borrowed [`Packet`].
#[derive(Clone, Debug)]
enum Model {
    Connect(Box<ConnectModel>),
    Connack {
        session_present: bool,
        reason: ReasonCode,
        properties: Vec<OwnedProp>,
    },
    Publish {
        dup: bool,
        qos_pid: QosPid,
        retain: bool,
        topic: String,
        properties: Vec<OwnedProp>,
        payload: Vec<u8>,
    },
    /// PUBACK, PUBREC, PUBREL or PUBCOMP, as `kind`.
    Ack {
        kind: PacketType,
        packet_id: u16,
        reason: ReasonCode,
        properties: Vec<OwnedProp>,
    },
    Subscribe {
        packet_id: u16,
        properties: Vec<OwnedProp>,
        subscriptions: Vec<(String, SubscriptionOptions)>,
    },
    Suback {
        packet_id: u16,
        properties: Vec<OwnedProp>,
        reason_codes: Vec<ReasonCode>,
    },
    Unsubscribe {
        packet_id: u16,
        properties: Vec<OwnedProp>,
        filters: Vec<String>,
    },
    Unsuback {
        packet_id: u16,
        properties: Vec<OwnedProp>,
        reason_codes: Vec<ReasonCode>,
    },
    Pingreq,
    Pingresp,
    Disconnect {
        reason: ReasonCode,
        properties: Vec<OwnedProp>,
    },
    Auth {
        reason: ReasonCode,
        properties: Vec<OwnedProp>,
    },
}

/// The borrowed slices a [`Packet`] built from a [`Model`] points into.
struct Parts<'m> {
    properties: Vec<Property<'m>>,
    will_properties: Vec<Property<'m>>,
    subscriptions: Vec<Subscription<'m>>,
    filters: Vec<&'m str>,
}

fn borrow_all(props: &[OwnedProp]) -> Vec<Property<'_>> {
    props.iter().map(OwnedProp::borrow).collect()
}

impl Model {
    fn parts(&self) -> Parts<'_> {
        let mut parts = Parts {
            properties: Vec::new(),
            will_properties: Vec::new(),
            subscriptions: Vec::new(),
            filters: Vec::new(),
        };
        match self {
            Model::Connect(c) => {
                parts.properties = borrow_all(&c.properties);
                if let Some(w) = &c.will {
                    parts.will_properties = borrow_all(&w.properties);
                }
            }
            Model::Connack { properties, .. }
            | Model::Publish { properties, .. }
            | Model::Ack { properties, .. }
            | Model::Suback { properties, .. }
            | Model::Unsuback { properties, .. }
            | Model::Disconnect { properties, .. }
            | Model::Auth { properties, .. } => parts.properties = borrow_all(properties),
            Model::Subscribe {
                properties,
                subscriptions,
                ..
            } => {
                parts.properties = borrow_all(properties);
                parts.subscriptions = subscriptions
                    .iter()
                    .map(|(filter, options)| Subscription {
                        filter,
                        options: *options,
                    })
                    .collect();
            }
            Model::Unsubscribe {
                properties,
                filters,
                ..
            } => {
                parts.properties = borrow_all(properties);
                parts.filters = filters.iter().map(String::as_str).collect();
            }
            Model::Pingreq | Model::Pingresp => {}
        }
        parts
    }

    fn packet<'a>(&'a self, parts: &'a Parts<'a>) -> Packet<'a> {
        let properties = Properties::new(&parts.properties);
        match self {
            Model::Connect(c) => Packet::Connect(Connect {
                version: c.version,
                clean_start: c.clean_start,
                keep_alive: c.keep_alive,
                properties,
                client_id: &c.client_id,
                will: c.will.as_ref().map(|w| Will {
                    qos: w.qos,
                    retain: w.retain,
                    properties: Properties::new(&parts.will_properties),
                    topic: &w.topic,
                    payload: &w.payload,
                }),
                username: c.username.as_deref(),
                password: c.password.as_deref(),
            }),
            Model::Connack {
                session_present,
                reason,
                ..
            } => Packet::Connack(Connack {
                session_present: *session_present,
                reason: *reason,
                properties,
            }),
            Model::Publish {
                dup,
                qos_pid,
                retain,
                topic,
                payload,
                ..
            } => Packet::Publish(Publish {
                dup: *dup,
                qos_pid: *qos_pid,
                retain: *retain,
                topic,
                properties,
                payload,
            }),
            Model::Ack {
                kind,
                packet_id,
                reason,
                ..
            } => {
                let ack = Ack {
                    packet_id: *packet_id,
                    reason: *reason,
                    properties,
                };
                match kind {
                    PacketType::Puback => Packet::Puback(ack),
                    PacketType::Pubrec => Packet::Pubrec(ack),
                    PacketType::Pubrel => Packet::Pubrel(ack),
                    PacketType::Pubcomp => Packet::Pubcomp(ack),
                    other => unreachable!("not an ack: {other:?}"),
                }
            }
            Model::Subscribe { packet_id, .. } => Packet::Subscribe(Subscribe {
                packet_id: *packet_id,
                properties,
                subscriptions: List::new(&parts.subscriptions),
            }),
            Model::Suback {
                packet_id,
                reason_codes,
                ..
            } => Packet::Suback(Suback {
                packet_id: *packet_id,
                properties,
                reason_codes: List::new(reason_codes),
            }),
            Model::Unsubscribe { packet_id, .. } => Packet::Unsubscribe(Unsubscribe {
                packet_id: *packet_id,
                properties,
                filters: List::new(&parts.filters),
            }),
            Model::Unsuback {
                packet_id,
                reason_codes,
                ..
            } => Packet::Unsuback(Unsuback {
                packet_id: *packet_id,
                properties,
                reason_codes: List::new(reason_codes),
            }),
            Model::Pingreq => Packet::Pingreq,
            Model::Pingresp => Packet::Pingresp,
            Model::Disconnect { reason, .. } => Packet::Disconnect(Disconnect {
                reason: *reason,
                properties,
            }),
            Model::Auth { reason, .. } => Packet::Auth(Auth {
                reason: *reason,
                properties,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Characters strings are mostly drawn from: ASCII, the topic separators, and one-, two-,
/// three- and four-byte UTF-8 sequences.
const ALPHABET: &[char] = &[
    'a', 'b', 'z', 'A', '0', '9', '/', '$', ' ', '-', '_', '.', '\u{7f}', 'é', 'ß', '€', '中',
    '\u{ffff}', '𝄞', '😀',
];

/// Any character but U+0000, mostly from [`ALPHABET`].
fn any_char() -> impl Strategy<Value = char> + Clone {
    prop_oneof![
        4 => select(ALPHABET),
        1 => any::<char>().prop_filter("U+0000 is never valid", |c| *c != '\0'),
    ]
}

/// A character that may appear in a topic name.
fn name_char() -> impl Strategy<Value = char> + Clone {
    any_char().prop_filter("no wildcards in names", |c| !matches!(c, '+' | '#'))
}

/// A character that may appear inside one level of a topic filter (no `/`, no wildcard).
fn level_char() -> impl Strategy<Value = char> + Clone {
    name_char().prop_filter("one level", |c| *c != '/')
}

fn text(max_chars: usize) -> impl Strategy<Value = String> + Clone {
    vec(any_char(), 0..max_chars).prop_map(String::from_iter)
}

fn bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> + Clone {
    vec(any::<u8>(), 0..max_len)
}

/// A non-empty topic name without wildcards.
fn topic_name() -> impl Strategy<Value = String> + Clone {
    vec(name_char(), 1..24).prop_map(String::from_iter)
}

/// Deterministic filler bytes, so multi-kilobyte payloads cost one value, not thousands.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Payloads from empty to a few KB, sometimes over 16,383 bytes so that the remaining
/// length takes three bytes.
fn payload() -> impl Strategy<Value = Vec<u8>> + Clone {
    prop_oneof![
        6 => bytes(64),
        3 => (64usize..4096, any::<u64>()).prop_map(|(n, seed)| noise(n, seed)),
        1 => (16_384usize..20_000, any::<u64>()).prop_map(|(n, seed)| noise(n, seed)),
    ]
}

fn packet_id() -> impl Strategy<Value = u16> + Clone {
    1..=u16::MAX
}

fn qos() -> impl Strategy<Value = QoS> + Clone {
    select(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][..])
}

fn non_zero_u16() -> impl Strategy<Value = u16> + Clone {
    prop_oneof![Just(1u16), Just(u16::MAX), 1..=u16::MAX]
}

fn any_u32() -> impl Strategy<Value = u32> + Clone {
    prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()]
}

/// Subscription Identifiers, with the edges of each Variable Byte Integer length.
fn subscription_identifier() -> impl Strategy<Value = u32> + Clone {
    prop_oneof![
        select(
            &[
                1u32, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_VARINT
            ][..]
        ),
        1..=MAX_VARINT,
    ]
}

/// A value in range for the property `id`.
fn property_value(id: PropertyId) -> BoxedStrategy<OwnedProp> {
    use OwnedProp as O;
    use PropertyId as I;
    match id {
        I::PayloadFormatIndicator => any::<bool>().prop_map(O::PayloadFormatIndicator).boxed(),
        I::MessageExpiryInterval => any_u32().prop_map(O::MessageExpiryInterval).boxed(),
        I::ContentType => text(12).prop_map(O::ContentType).boxed(),
        I::ResponseTopic => topic_name().prop_map(O::ResponseTopic).boxed(),
        I::CorrelationData => bytes(16).prop_map(O::CorrelationData).boxed(),
        I::SubscriptionIdentifier => subscription_identifier()
            .prop_map(O::SubscriptionIdentifier)
            .boxed(),
        I::SessionExpiryInterval => any_u32().prop_map(O::SessionExpiryInterval).boxed(),
        I::AssignedClientIdentifier => text(12).prop_map(O::AssignedClientIdentifier).boxed(),
        I::ServerKeepAlive => any::<u16>().prop_map(O::ServerKeepAlive).boxed(),
        I::AuthenticationMethod => text(12).prop_map(O::AuthenticationMethod).boxed(),
        I::AuthenticationData => bytes(16).prop_map(O::AuthenticationData).boxed(),
        I::RequestProblemInformation => {
            any::<bool>().prop_map(O::RequestProblemInformation).boxed()
        }
        I::WillDelayInterval => any_u32().prop_map(O::WillDelayInterval).boxed(),
        I::RequestResponseInformation => any::<bool>()
            .prop_map(O::RequestResponseInformation)
            .boxed(),
        I::ResponseInformation => text(12).prop_map(O::ResponseInformation).boxed(),
        I::ServerReference => text(12).prop_map(O::ServerReference).boxed(),
        I::ReasonString => text(12).prop_map(O::ReasonString).boxed(),
        I::ReceiveMaximum => non_zero_u16().prop_map(O::ReceiveMaximum).boxed(),
        I::TopicAliasMaximum => any::<u16>().prop_map(O::TopicAliasMaximum).boxed(),
        I::TopicAlias => non_zero_u16().prop_map(O::TopicAlias).boxed(),
        I::MaximumQoS => select(&[QoS::AtMostOnce, QoS::AtLeastOnce][..])
            .prop_map(O::MaximumQoS)
            .boxed(),
        I::RetainAvailable => any::<bool>().prop_map(O::RetainAvailable).boxed(),
        I::UserProperty => (text(8), text(8))
            .prop_map(|(k, v)| O::UserProperty(k, v))
            .boxed(),
        I::MaximumPacketSize => prop_oneof![Just(1u32), Just(u32::MAX), 1..=u32::MAX]
            .prop_map(O::MaximumPacketSize)
            .boxed(),
        I::WildcardSubscriptionAvailable => any::<bool>()
            .prop_map(O::WildcardSubscriptionAvailable)
            .boxed(),
        I::SubscriptionIdentifierAvailable => any::<bool>()
            .prop_map(O::SubscriptionIdentifierAvailable)
            .boxed(),
        I::SharedSubscriptionAvailable => any::<bool>()
            .prop_map(O::SharedSubscriptionAvailable)
            .boxed(),
    }
}

/// Properties valid for `packet` (or its will) in `version`: none before MQTT 5; otherwise
/// only allowed ones, each at most once except User Property (and Subscription Identifier
/// in PUBLISH), in any order, and CONNECT's Authentication Data only with a Method.
fn properties(
    version: ProtocolVersion,
    packet: PacketType,
    will: bool,
) -> BoxedStrategy<Vec<OwnedProp>> {
    if !version.is_v5() {
        return Just(Vec::new()).boxed();
    }
    let repeatable = |id: PropertyId| {
        id == PropertyId::UserProperty
            || (id == PropertyId::SubscriptionIdentifier && packet == PacketType::Publish && !will)
    };
    let allowed: Vec<PropertyId> = ALL_PROPERTY_IDS
        .into_iter()
        .filter(|id| id.is_allowed_in(packet, will))
        .collect();
    let once: Vec<_> = allowed
        .iter()
        .filter(|id| !repeatable(**id))
        .map(|id| proptest::option::weighted(0.35, property_value(*id)))
        .collect();
    let repeated: Vec<_> = allowed
        .iter()
        .filter(|id| repeatable(**id))
        .map(|id| vec(property_value(*id), 0..3))
        .collect();
    let some = (once, repeated)
        .prop_map(move |(once, repeated)| {
            let mut props: Vec<_> = once
                .into_iter()
                .flatten()
                .chain(repeated.into_iter().flatten())
                .collect();
            // In CONNECT, Authentication Data needs an Authentication Method (3.1.2.11.10).
            let has_method = props
                .iter()
                .any(|p| matches!(p, OwnedProp::AuthenticationMethod(_)));
            if packet == PacketType::Connect && !has_method {
                props.retain(|p| !matches!(p, OwnedProp::AuthenticationData(_)));
            }
            props
        })
        .prop_shuffle();
    prop_oneof![1 => Just(Vec::new()), 3 => some].boxed()
}

/// Reason codes valid for `packet` in `version`: for 3.1/3.1.1 only those that survive the
/// mapping onto the older return codes.
fn reason_codes(version: ProtocolVersion, packet: PacketType) -> Vec<ReasonCode> {
    use ReasonCode::*;
    if version.is_v5() {
        return ReasonCode::ALL
            .into_iter()
            .filter(|c| c.is_valid_for(packet))
            .collect();
    }
    match packet {
        PacketType::Connack => vec![
            Success,
            UnsupportedProtocolVersion,
            ClientIdentifierNotValid,
            ServerUnavailable,
            BadUserNameOrPassword,
            NotAuthorized,
        ],
        PacketType::Suback => vec![Success, GrantedQoS1, GrantedQoS2, UnspecifiedError],
        _ => vec![Success],
    }
}

fn reason(version: ProtocolVersion, packet: PacketType) -> impl Strategy<Value = ReasonCode> {
    select(reason_codes(version, packet))
}

/// A valid filter that is not a shared subscription: levels of ordinary characters or
/// `+`, optionally ending in `#` (or `#` alone).
fn plain_filter() -> impl Strategy<Value = String> + Clone {
    let level = prop_oneof![
        3 => vec(level_char(), 0..6).prop_map(String::from_iter),
        1 => Just("+".to_owned()),
    ];
    (vec(level, 0..5), any::<bool>())
        .prop_map(|(levels, hash)| {
            if levels.is_empty() {
                "#".to_owned()
            } else if hash {
                format!("{}/#", levels.join("/"))
            } else {
                levels.join("/")
            }
        })
        .prop_filter("a non-empty, non-shared filter", |f| {
            !f.is_empty() && !f.starts_with("$share/")
        })
}

/// A valid filter, with whether it is a shared subscription.
fn filter() -> impl Strategy<Value = (String, bool)> + Clone {
    let group = vec(level_char(), 1..6).prop_map(String::from_iter);
    prop_oneof![
        3 => plain_filter().prop_map(|f| (f, false)),
        1 => (group, plain_filter()).prop_map(|(g, f)| (format!("$share/{g}/{f}"), true)),
    ]
}

fn subscription(version: ProtocolVersion) -> impl Strategy<Value = (String, SubscriptionOptions)> {
    let retain_handling = select(
        &[
            RetainHandling::OnSubscribe,
            RetainHandling::OnNewSubscription,
            RetainHandling::Never,
        ][..],
    );
    (
        filter(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        retain_handling,
    )
        .prop_map(
            move |((filter, shared), qos, no_local, retain_as_published, retain_handling)| {
                let options = if version.is_v5() {
                    SubscriptionOptions {
                        qos,
                        // [MQTT-3.8.3-4]: No Local is a protocol error on a shared subscription.
                        no_local: no_local && !shared,
                        retain_as_published,
                        retain_handling,
                    }
                } else {
                    SubscriptionOptions::new(qos)
                };
                (filter, options)
            },
        )
}

fn connect(version: ProtocolVersion) -> impl Strategy<Value = Model> {
    let will = proptest::option::of(
        (
            qos(),
            any::<bool>(),
            properties(version, PacketType::Connect, true),
            topic_name(),
            payload(),
        )
            .prop_map(|(qos, retain, properties, topic, payload)| WillModel {
                qos,
                retain,
                properties,
                topic,
                payload,
            }),
    );
    let credentials = if version.is_v5() {
        (
            proptest::option::of(text(12)),
            proptest::option::of(bytes(16)),
        )
            .boxed()
    } else {
        // 3.1/3.1.1: a password only with a user name.
        proptest::option::of((text(12), proptest::option::of(bytes(16))))
            .prop_map(|creds| match creds {
                Some((username, password)) => (Some(username), password),
                None => (None, None),
            })
            .boxed()
    };
    (
        any::<bool>(),
        any::<u16>(),
        properties(version, PacketType::Connect, false),
        text(24),
        will,
        credentials,
    )
        .prop_map(
            move |(clean_start, keep_alive, properties, client_id, will, (username, password))| {
                Model::Connect(Box::new(ConnectModel {
                    version,
                    clean_start,
                    keep_alive,
                    properties,
                    client_id,
                    will,
                    username,
                    password,
                }))
            },
        )
}

fn publish(version: ProtocolVersion) -> impl Strategy<Value = Model> {
    let qos_pid = prop_oneof![
        Just(QosPid::AtMostOnce),
        packet_id().prop_map(QosPid::AtLeastOnce),
        packet_id().prop_map(QosPid::ExactlyOnce),
    ];
    // MQTT 5 may leave the topic empty when a Topic Alias stands for it.
    let topic = if version.is_v5() {
        prop_oneof![4 => topic_name(), 1 => Just(String::new())].boxed()
    } else {
        topic_name().boxed()
    };
    (
        qos_pid,
        any::<bool>(),
        any::<bool>(),
        topic,
        properties(version, PacketType::Publish, false),
        non_zero_u16(),
        any::<Index>(),
        payload(),
    )
        .prop_map(
            |(qos_pid, dup, retain, topic, mut properties, alias, at, payload)| {
                let has_alias = properties
                    .iter()
                    .any(|p| matches!(p, OwnedProp::TopicAlias(_)));
                if topic.is_empty() && !has_alias {
                    properties.insert(at.index(properties.len() + 1), OwnedProp::TopicAlias(alias));
                }
                Model::Publish {
                    // [MQTT-3.3.1-2]: DUP is 0 for QoS 0.
                    dup: dup && qos_pid != QosPid::AtMostOnce,
                    qos_pid,
                    retain,
                    topic,
                    properties,
                    payload,
                }
            },
        )
}

fn ack(version: ProtocolVersion) -> impl Strategy<Value = Model> {
    select(
        &[
            PacketType::Puback,
            PacketType::Pubrec,
            PacketType::Pubrel,
            PacketType::Pubcomp,
        ][..],
    )
    .prop_flat_map(move |kind| {
        (
            packet_id(),
            reason(version, kind),
            properties(version, kind, false),
        )
            .prop_map(move |(packet_id, reason, properties)| Model::Ack {
                kind,
                packet_id,
                reason,
                properties,
            })
    })
}

/// Any valid packet of `version`, every type equally likely.
fn model(version: ProtocolVersion) -> BoxedStrategy<Model> {
    let v = version;
    let mut arms: Vec<(u32, BoxedStrategy<Model>)> = vec![
        (1, connect(v).boxed()),
        (
            1,
            (
                any::<bool>(),
                reason(v, PacketType::Connack),
                properties(v, PacketType::Connack, false),
            )
                .prop_map(
                    move |(session_present, reason, properties)| Model::Connack {
                        // 3.1 has no session present flag.
                        session_present: session_present && v != ProtocolVersion::V3_1,
                        reason,
                        properties,
                    },
                )
                .boxed(),
        ),
        (2, publish(v).boxed()),
        (2, ack(v).boxed()),
        (
            1,
            (
                packet_id(),
                properties(v, PacketType::Subscribe, false),
                vec(subscription(v), 1..6),
            )
                .prop_map(|(packet_id, properties, subscriptions)| Model::Subscribe {
                    packet_id,
                    properties,
                    subscriptions,
                })
                .boxed(),
        ),
        (
            1,
            (
                packet_id(),
                properties(v, PacketType::Suback, false),
                vec(reason(v, PacketType::Suback), 1..8),
            )
                .prop_map(|(packet_id, properties, reason_codes)| Model::Suback {
                    packet_id,
                    properties,
                    reason_codes,
                })
                .boxed(),
        ),
        (
            1,
            (
                packet_id(),
                properties(v, PacketType::Unsubscribe, false),
                vec(filter().prop_map(|(f, _)| f), 1..6),
            )
                .prop_map(|(packet_id, properties, filters)| Model::Unsubscribe {
                    packet_id,
                    properties,
                    filters,
                })
                .boxed(),
        ),
        (
            1,
            (
                packet_id(),
                properties(v, PacketType::Unsuback, false),
                // 3.1/3.1.1 UNSUBACK carries no reason codes.
                if v.is_v5() {
                    vec(reason(v, PacketType::Unsuback), 1..8).boxed()
                } else {
                    Just(Vec::new()).boxed()
                },
            )
                .prop_map(|(packet_id, properties, reason_codes)| Model::Unsuback {
                    packet_id,
                    properties,
                    reason_codes,
                })
                .boxed(),
        ),
        (1, Just(Model::Pingreq).boxed()),
        (1, Just(Model::Pingresp).boxed()),
        (
            1,
            (
                reason(v, PacketType::Disconnect),
                properties(v, PacketType::Disconnect, false),
            )
                .prop_map(|(reason, properties)| Model::Disconnect { reason, properties })
                .boxed(),
        ),
    ];
    if v.is_v5() {
        arms.push((
            1,
            (
                reason(v, PacketType::Auth),
                properties(v, PacketType::Auth, false),
            )
                .prop_map(|(reason, properties)| Model::Auth { reason, properties })
                .boxed(),
        ));
    }
    Union::new_weighted(arms).boxed()
}

/// One change to an encoded packet.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR a byte with a non-zero mask.
    Flip(Index, u8),
    /// Cut the buffer at a position.
    Truncate(Index),
    /// Insert a byte.
    Insert(Index, u8),
    /// Remove a byte.
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1..=u8::MAX).prop_map(|(i, m)| Mutation::Flip(i, m)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut buf: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Flip(i, mask) if !buf.is_empty() => {
                let i = i.index(buf.len());
                buf[i] ^= mask;
            }
            Mutation::Truncate(i) => buf.truncate(i.index(buf.len() + 1)),
            Mutation::Insert(i, b) => buf.insert(i.index(buf.len() + 1), *b),
            Mutation::Remove(i) if !buf.is_empty() => {
                buf.remove(i.index(buf.len()));
            }
            _ => {}
        }
    }
    buf
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// The fixed header length read straight off the bytes: the type byte and the remaining
/// length up to its first byte without the continuation bit.
fn fixed_header_len(frame: &[u8]) -> usize {
    let varint = frame[1..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .expect("a complete remaining length");
    varint + 2
}

/// The first byte of `packet` as the specification lays it out.
fn expected_first_byte(packet: &Packet<'_>) -> u8 {
    let flags = match packet {
        Packet::Publish(p) => {
            (u8::from(p.dup) << 3) | ((p.qos_pid.qos() as u8) << 1) | u8::from(p.retain)
        }
        Packet::Pubrel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    ((packet.packet_type() as u8) << 4) | flags
}

/// Encodes `packet` into a slice, checking `encoded_len`, the exact-size contract and (with
/// the `bytes` feature) `encode_to`.
fn encode_checked(packet: &Packet<'_>, version: ProtocolVersion) -> Result<Vec<u8>, TestCaseError> {
    let len = packet
        .encoded_len(version)
        .map_err(|e| TestCaseError::fail(format!("encoded_len failed: {e:?}")))?;
    // Guard bytes after the packet must stay untouched.
    let mut buf = vec![0xA5; len + 3];
    prop_assert_eq!(packet.encode(version, &mut buf), Ok(len));
    prop_assert_eq!(&buf[len..], &[0xA5; 3][..], "encode wrote past its length");
    buf.truncate(len);
    prop_assert_eq!(
        packet.encode(version, &mut vec![0; len - 1]),
        Err(EncodeError::BufferTooSmall { needed: len })
    );
    prop_assert!(buf.len() >= 2);
    prop_assert_eq!(buf[0], expected_first_byte(packet));
    let header_len = fixed_header_len(&buf);
    let remaining = buf.len() - header_len;
    prop_assert_eq!(header_len, 1 + midge_wire::varint_len(remaining as u32));

    #[cfg(feature = "bytes")]
    {
        let mut out = bytes::BytesMut::new();
        prop_assert_eq!(packet.encode_to(version, &mut out), Ok(len));
        prop_assert_eq!(&out[..], &buf[..], "encode_to differs from encode");
        // encode_to appends.
        let mut out = bytes::BytesMut::from(&b"xyz"[..]);
        prop_assert_eq!(packet.encode_to(version, &mut out), Ok(len));
        prop_assert_eq!(&out[..3], b"xyz");
        prop_assert_eq!(&out[3..], &buf[..]);
    }
    Ok(buf)
}

fn expect_complete<'a>(
    buf: &'a [u8],
    opts: &DecodeOptions,
) -> Result<(Packet<'a>, usize), TestCaseError> {
    match decode(buf, opts) {
        Ok(Decoded::Complete { packet, len }) => Ok((packet, len)),
        other => Err(TestCaseError::fail(format!(
            "expected a complete packet from {buf:02x?}, got {other:?}"
        ))),
    }
}

fn check_round_trip(model: &Model, version: ProtocolVersion) -> TestResult {
    let parts = model.parts();
    let packet = model.packet(&parts);
    let buf = encode_checked(&packet, version)?;
    let (decoded, len) = expect_complete(&buf, &opts(version))?;
    prop_assert_eq!(len, buf.len());
    prop_assert_eq!(decoded, packet);
    // The decoded packet (whose lists are wire bytes) encodes to the same bytes.
    prop_assert_eq!(encode_checked(&decoded, version)?, buf.clone());
    // CONNECT carries its own version: it decodes the same whatever the connection expects.
    if let Packet::Connect(_) = packet {
        for other in VERSIONS {
            prop_assert_eq!(expect_complete(&buf, &opts(other))?, (packet, buf.len()));
        }
    }

    // The size limit is inclusive and is checked against the whole frame.
    let exact = DecodeOptions {
        version,
        max_packet_size: buf.len() as u32,
    };
    prop_assert_eq!(expect_complete(&buf, &exact)?.0, packet);
    let below = DecodeOptions {
        max_packet_size: buf.len() as u32 - 1,
        ..exact
    };
    prop_assert_eq!(
        decode(&buf, &below),
        Err(DecodeError::PacketTooLarge {
            size: buf.len(),
            max: buf.len() as u32 - 1
        })
    );
    Ok(())
}

fn check_prefixes(model: &Model, version: ProtocolVersion) -> TestResult {
    let parts = model.parts();
    let packet = model.packet(&parts);
    let buf = encode_checked(&packet, version)?;
    let header_len = fixed_header_len(&buf);
    let opts = opts(version);
    for end in 0..buf.len() {
        let expected = Decoded::Incomplete {
            frame_len: (end >= header_len).then_some(buf.len()),
        };
        prop_assert_eq!(
            decode(&buf[..end], &opts),
            Ok(expected),
            "prefix of {}",
            end
        );
    }
    Ok(())
}

fn check_concatenated(first: &Model, second: &Model, version: ProtocolVersion) -> TestResult {
    let (parts1, parts2) = (first.parts(), second.parts());
    let (p1, p2) = (first.packet(&parts1), second.packet(&parts2));
    let b1 = encode_checked(&p1, version)?;
    let b2 = encode_checked(&p2, version)?;
    let stream = [b1.as_slice(), b2.as_slice()].concat();
    let opts = opts(version);
    let (d1, len1) = expect_complete(&stream, &opts)?;
    prop_assert_eq!(len1, b1.len());
    prop_assert_eq!(d1, p1);
    let (d2, len2) = expect_complete(&stream[len1..], &opts)?;
    prop_assert_eq!(len2, b2.len());
    prop_assert_eq!(d2, p2);
    // The first packet followed by part of the second still decodes as the first.
    let cut = len1 + b2.len() / 2;
    prop_assert_eq!(expect_complete(&stream[..cut], &opts)?, (p1, len1));
    Ok(())
}

/// A packet that `decode` accepted re-encodes, and the encoding decodes to an equal packet
/// and is a fixed point of decode-then-encode.
fn check_reencodes(packet: &Packet<'_>, version: ProtocolVersion) -> TestResult {
    let buf = encode_checked(packet, version)?;
    let (again, len) = expect_complete(&buf, &opts(version))?;
    prop_assert_eq!(len, buf.len());
    prop_assert_eq!(&again, packet);
    prop_assert_eq!(encode_checked(&again, version)?, buf);
    Ok(())
}

/// Decodes arbitrary bytes: no panic, consistent lengths, and anything accepted re-encodes.
fn check_arbitrary(buf: &[u8], version: ProtocolVersion, max_packet_size: u32) -> TestResult {
    let opts = DecodeOptions {
        version,
        max_packet_size,
    };
    match decode(buf, &opts) {
        Ok(Decoded::Complete { packet, len }) => {
            prop_assert!(len >= 2 && len <= buf.len() && len <= max_packet_size as usize);
            prop_assert_eq!(packet.packet_type() as u8, buf[0] >> 4);
            if packet.packet_type() == PacketType::Auth {
                prop_assert!(version.is_v5(), "AUTH accepted in {:?}", version);
            }
            // Only the frame counts: the same bytes without what follows decode the same.
            prop_assert_eq!(
                decode(&buf[..len], &opts),
                Ok(Decoded::Complete { packet, len })
            );
            check_reencodes(&packet, version)?;
        }
        Ok(Decoded::Incomplete { frame_len }) => {
            if let Some(frame_len) = frame_len {
                prop_assert!(frame_len > buf.len() && frame_len <= max_packet_size as usize);
            }
        }
        Err(DecodeError::PacketTooLarge { size, max }) => {
            prop_assert_eq!(max, max_packet_size);
            prop_assert!(size > max as usize);
        }
        Err(_) => {}
    }
    Ok(())
}

fn check_arbitrary_everywhere(buf: &[u8]) -> TestResult {
    for version in VERSIONS {
        for max in [SMALL_MAX, LARGE_MAX] {
            check_arbitrary(buf, version, max)?;
        }
    }
    Ok(())
}

fn push_varint(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A frame with the given first byte, a correct remaining length and `body`.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    push_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// First bytes that pass the fixed-header checks (for some version).
fn valid_first_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        select(
            &[
                0x10u8, 0x20, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0, 0xC0, 0xD0, 0xE0,
                0xF0
            ][..]
        ),
        0x30u8..=0x3F,
    ]
}

// ---------------------------------------------------------------------------------------
// Properties 1–3, once per protocol version
// ---------------------------------------------------------------------------------------

macro_rules! per_version {
    ($($module:ident => $version:expr;)*) => {$(
        mod $module {
            use super::*;

            const VERSION: ProtocolVersion = $version;

            proptest! {
                #[test]
                fn round_trip(model in model(VERSION)) {
                    check_round_trip(&model, VERSION)?;
                }

                #[test]
                fn every_strict_prefix_is_incomplete(model in model(VERSION)) {
                    check_prefixes(&model, VERSION)?;
                }

                #[test]
                fn concatenated_packets_decode_in_order(
                    first in model(VERSION),
                    second in model(VERSION),
                ) {
                    check_concatenated(&first, &second, VERSION)?;
                }

                #[test]
                fn mutated_encodings_never_panic(
                    model in model(VERSION),
                    mutations in vec(mutation(), 1..=4),
                ) {
                    let parts = model.parts();
                    let packet = model.packet(&parts);
                    let buf = encode_checked(&packet, VERSION)?;
                    let mutated = mutate(buf, &mutations);
                    check_arbitrary_everywhere(&mutated)?;
                }
            }
        }
    )*};
}

per_version! {
    v3_1 => ProtocolVersion::V3_1;
    v3_1_1 => ProtocolVersion::V3_1_1;
    v5 => ProtocolVersion::V5;
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..512)) {
        check_arbitrary_everywhere(&buf)?;
    }

    /// Arbitrary bodies behind plausible fixed headers, so bodies are actually parsed.
    #[test]
    fn arbitrary_bodies_never_panic(
        first in valid_first_byte(),
        body in prop_oneof![2 => bytes(4), 1 => bytes(64)],
    ) {
        check_arbitrary_everywhere(&frame(first, &body))?;
    }
}

// ---------------------------------------------------------------------------------------
// Property 4: topics
// ---------------------------------------------------------------------------------------

/// Reference topic matching: `+` is one whole level, a last-level `#` matches its parent
/// and any number of levels below it, and a filter starting with a wildcard does not match
/// a topic starting with `$`.
fn reference_matches(filter: &str, name: &str) -> bool {
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = name.split('/').collect();
    if name.starts_with('$') && matches!(f[0], "+" | "#") {
        return false;
    }
    let level = |(fl, tl): (&&str, &&str)| *fl == "+" || fl == tl;
    match f.split_last() {
        Some((&"#", parent)) => t.len() >= parent.len() && parent.iter().zip(&t).all(level),
        _ => f.len() == t.len() && f.iter().zip(&t).all(level),
    }
}

fn reference_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', '#'])
}

fn reference_valid_plain_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    !filter.is_empty()
        && levels.iter().enumerate().all(|(i, l)| match *l {
            "+" => true,
            "#" => i == levels.len() - 1,
            l => !l.contains(['+', '#']),
        })
}

fn reference_valid_filter(filter: &str) -> bool {
    match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((group, inner)) => {
                !group.is_empty()
                    && !group.contains(['+', '#'])
                    && reference_valid_plain_filter(inner)
            }
            None => false,
        },
        None => reference_valid_plain_filter(filter),
    }
}

const SMALL_LEVELS: &[&str] = &["a", "b", "$x", ""];

fn small_name() -> impl Strategy<Value = String> {
    vec(select(SMALL_LEVELS), 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("names are not empty", |n| !n.is_empty())
}

fn small_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![3 => select(SMALL_LEVELS), 2 => Just("+")];
    (vec(level, 0..5), any::<bool>())
        .prop_map(|(levels, hash)| match (levels.is_empty(), hash) {
            (true, _) => "#".to_owned(),
            (false, true) => format!("{}/#", levels.join("/")),
            (false, false) => levels.join("/"),
        })
        .prop_filter("filters are not empty", |f| !f.is_empty())
}

/// Strings that are often almost, but not quite, valid names and filters.
fn topicish() -> impl Strategy<Value = String> {
    let piece = select(&["a", "b", "/", "+", "#", "$", "$share", "$share/", "é"][..]);
    vec(piece, 0..7).prop_map(|pieces| pieces.concat())
}

/// A SUBSCRIBE with one filter (QoS 0 options), encoded by hand.
fn raw_subscribe(filter: &str, version: ProtocolVersion) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    if version.is_v5() {
        body.push(0x00); // no properties
    }
    body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
    body.extend_from_slice(filter.as_bytes());
    body.push(0x00);
    frame(0x82, &body)
}

/// A QoS 0 PUBLISH with an empty payload, encoded by hand.
fn raw_publish(name: &str, version: ProtocolVersion) -> Vec<u8> {
    let mut body = (name.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(name.as_bytes());
    if version.is_v5() {
        body.push(0x00);
    }
    frame(0x30, &body)
}

proptest! {
    #[test]
    fn matching_agrees_with_reference(filter in small_filter(), name in small_name()) {
        prop_assert_eq!(topic::validate_filter(&filter), Ok(()));
        prop_assert_eq!(topic::validate_name(&name), Ok(()));
        prop_assert_eq!(
            topic::matches(&filter, &name),
            reference_matches(&filter, &name),
            "filter {:?}, name {:?}", filter, name
        );
    }

    /// A filter built from a name (some levels replaced by `+`, maybe a tail by `#`)
    /// matches it unless the `$` rule forbids.
    #[test]
    fn generalised_filters_match(
        name in small_name(),
        plus in vec(any::<bool>(), 4),
        hash_at in any::<Option<Index>>(),
    ) {
        let levels: Vec<&str> = name.split('/').collect();
        let mut filter: Vec<&str> = levels
            .iter()
            .zip(plus.iter().chain(std::iter::repeat(&false)))
            .map(|(l, p)| if *p { "+" } else { *l })
            .collect();
        if let Some(at) = hash_at {
            filter.truncate(at.index(levels.len() + 1));
            filter.push("#");
        }
        let filter = filter.join("/");
        let dollar_blocked = name.starts_with('$') && filter.starts_with(['+', '#']);
        prop_assert_eq!(topic::matches(&filter, &name), !dollar_blocked, "filter {:?}", filter);
    }

    #[test]
    fn validation_agrees_with_reference(s in topicish()) {
        prop_assert_eq!(topic::validate_name(&s).is_ok(), reference_valid_name(&s));
        prop_assert_eq!(topic::validate_filter(&s).is_ok(), reference_valid_filter(&s));
        for version in VERSIONS {
            let sub = raw_subscribe(&s, version);
            let decoded = decode(&sub, &opts(version));
            prop_assert_eq!(
                matches!(decoded, Ok(Decoded::Complete { .. })),
                reference_valid_filter(&s),
                "SUBSCRIBE {:?} in {:?}: {:?}", s, version, decoded
            );
            let publish = raw_publish(&s, version);
            let decoded = decode(&publish, &opts(version));
            prop_assert_eq!(
                matches!(decoded, Ok(Decoded::Complete { .. })),
                reference_valid_name(&s),
                "PUBLISH {:?} in {:?}: {:?}", s, version, decoded
            );
        }
    }
}

/// Every small name against every small filter (names and filters up to three levels).
#[test]
fn matching_agrees_with_reference_exhaustively() {
    fn sequences(alphabet: &[&'static str], max: usize) -> Vec<Vec<&'static str>> {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..max {
            last = last
                .iter()
                .flat_map(|s: &Vec<&str>| {
                    alphabet.iter().map(move |l| {
                        let mut s = s.clone();
                        s.push(l);
                        s
                    })
                })
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }
    let names: Vec<String> = sequences(SMALL_LEVELS, 3)
        .into_iter()
        .map(|s| s.join("/"))
        .filter(|n| !n.is_empty())
        .collect();
    let mut filters = Vec::new();
    for levels in sequences(&["a", "b", "$x", "", "+"], 3) {
        if levels.is_empty() {
            filters.push("#".to_owned());
            continue;
        }
        let f = levels.join("/");
        filters.push(format!("{f}/#"));
        if !f.is_empty() {
            filters.push(f);
        }
    }
    let mut matched = 0;
    for f in &filters {
        assert_eq!(topic::validate_filter(f), Ok(()), "{f:?}");
        for n in &names {
            let expected = reference_matches(f, n);
            assert_eq!(topic::matches(f, n), expected, "filter {f:?}, name {n:?}");
            matched += usize::from(expected);
        }
    }
    assert!(matched > 1000, "the alphabet should make matches common");
}

// ---------------------------------------------------------------------------------------
// Fixed cases the properties reach only by chance
// ---------------------------------------------------------------------------------------

/// PUBLISH frames whose remaining length sits on each edge of the 1-, 2-, 3- and 4-byte
/// Variable Byte Integer.
#[test]
fn remaining_length_edges() {
    for version in VERSIONS {
        // Topic "t" (2 + 1 bytes) and, in MQTT 5, an empty property length (1 byte).
        let overhead = 3 + usize::from(version.is_v5());
        for (remaining, header_len) in [
            (127, 2),
            (128, 3),
            (16_383, 3),
            (16_384, 4),
            (2_097_151, 4),
            (2_097_152, 5),
        ] {
            let payload = noise(remaining - overhead, remaining as u64);
            let packet = Packet::Publish(Publish {
                dup: false,
                qos_pid: QosPid::AtMostOnce,
                retain: false,
                topic: "t",
                properties: Properties::EMPTY,
                payload: &payload,
            });
            let total = header_len + remaining;
            assert_eq!(packet.encoded_len(version), Ok(total));
            let mut buf = vec![0; total];
            assert_eq!(packet.encode(version, &mut buf), Ok(total));
            assert_eq!(fixed_header_len(&buf), header_len);
            let opts = opts(version);
            assert_eq!(
                decode(&buf, &opts),
                Ok(Decoded::Complete { packet, len: total })
            );
            for end in 0..header_len + 2 {
                let frame_len = (end >= header_len).then_some(total);
                assert_eq!(
                    decode(&buf[..end], &opts),
                    Ok(Decoded::Incomplete { frame_len })
                );
            }
            assert_eq!(
                decode(&buf[..total - 1], &opts),
                Ok(Decoded::Incomplete {
                    frame_len: Some(total)
                })
            );
        }
    }
}

/// AUTH exists only in MQTT 5, in both directions.
#[test]
fn auth_only_in_v5() {
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties::EMPTY,
    });
    let mut buf = [0u8; 8];
    let n = auth.encode(ProtocolVersion::V5, &mut buf).unwrap();
    for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
        assert_eq!(
            auth.encoded_len(version),
            Err(EncodeError::NotInThisVersion)
        );
        assert_eq!(
            auth.encode(version, &mut [0u8; 8]),
            Err(EncodeError::NotInThisVersion)
        );
        assert_eq!(
            decode(&buf[..n], &opts(version)),
            Err(DecodeError::InvalidPacketType(15))
        );
    }
}
