//! MQTT 5 properties the broker passes through from publisher to subscribers.

use bytes::{Bytes, BytesMut};
use midge_wire::{Properties, Property};

/// The wire form of `props` without the ones `dropped` selects: what is kept with a
/// message and sent on as published. Copies the wire bytes as they are when nothing is
/// dropped (the common case).
pub fn forwarded(props: &Properties<'_>, dropped: impl Fn(&Property<'_>) -> bool) -> Bytes {
    if props.is_empty() {
        return Bytes::new();
    }
    if !props.iter().any(|p| dropped(&p)) && props.items().is_empty() {
        return Bytes::copy_from_slice(props.wire());
    }
    let kept: Vec<Property<'_>> = props.iter().filter(|p| !dropped(p)).collect();
    let mut out = BytesMut::new();
    Properties::new(&kept).encode_body_to(&mut out);
    out.freeze()
}

/// Properties of a PUBLISH the broker sets per delivery rather than forwarding.
pub fn set_per_delivery(p: &Property<'_>) -> bool {
    matches!(
        p,
        Property::TopicAlias(_)
            | Property::SubscriptionIdentifier(_)
            | Property::MessageExpiryInterval(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_drops_what_the_broker_sets() {
        let items = [
            Property::UserProperty("b", "2"),
            Property::TopicAlias(3),
            Property::ContentType("text/plain"),
            Property::UserProperty("a", "1"),
            Property::MessageExpiryInterval(9),
        ];
        let wire = forwarded(&Properties::new(&items), set_per_delivery);
        let kept: Vec<_> = Properties::with_wire(&wire, &[]).iter().collect();
        assert_eq!(
            kept,
            [
                Property::UserProperty("b", "2"),
                Property::ContentType("text/plain"),
                Property::UserProperty("a", "1"),
            ]
        );
    }
}
