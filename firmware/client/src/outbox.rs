//! Outgoing messages kept until the broker has acknowledged them.
//!
//! Each slot holds the encoded frame, so sending it again after a reconnect is a copy
//! (plus the DUP bit) and the caller's topic and payload need not outlive `publish`.

use embassy_time::Instant;
use heapless::Vec;
use midge_wire::QoS;

/// Where an outgoing message is in its QoS flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The frame is the PUBLISH; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Publish,
    /// QoS 2 after PUBREC: the frame is now the PUBREL; waiting for PUBCOMP.
    Release,
}

#[derive(Debug)]
pub(crate) struct Slot<const MAX_PACKET: usize> {
    pub(crate) frame: Vec<u8, MAX_PACKET>,
    pub(crate) qos: QoS,
    /// Zero for QoS 0.
    pub(crate) packet_id: u16,
    pub(crate) stage: Stage,
    /// When it went out on the current connection; `None` if it has not yet.
    pub(crate) sent_at: Option<Instant>,
}

const DUP: u8 = 0x08;

/// Messages in publish order.
#[derive(Debug)]
pub(crate) struct Outbox<const MAX_PACKET: usize, const N: usize> {
    slots: Vec<Slot<MAX_PACKET>, N>,
}

impl<const MAX_PACKET: usize, const N: usize> Outbox<MAX_PACKET, N> {
    pub(crate) const fn new() -> Self {
        Self { slots: Vec::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.slots.is_full()
    }

    pub(crate) fn uses_id(&self, packet_id: u16) -> bool {
        self.slots.iter().any(|s| s.packet_id == packet_id)
    }

    /// Adds a slot; the caller has checked that there is room.
    pub(crate) fn push(&mut self, slot: Slot<MAX_PACKET>) {
        let pushed = self.slots.push(slot);
        debug_assert!(pushed.is_ok(), "outbox overflow");
    }

    pub(crate) fn find(&mut self, packet_id: u16, stage: Stage) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.packet_id == packet_id && s.qos != QoS::AtMostOnce && s.stage == stage)
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> &mut Slot<MAX_PACKET> {
        &mut self.slots[index]
    }

    pub(crate) fn remove(&mut self, index: usize) -> Slot<MAX_PACKET> {
        self.slots.remove(index)
    }

    /// Messages sent on this connection and not yet acknowledged (they count against the
    /// broker's Receive Maximum).
    pub(crate) fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.qos != QoS::AtMostOnce && s.sent_at.is_some())
            .count()
    }

    /// The oldest send time among un-acknowledged messages.
    pub(crate) fn oldest_unacked(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.qos != QoS::AtMostOnce)
            .filter_map(|s| s.sent_at)
            .min()
    }

    /// The first message not yet sent on this connection; QoS 1/2 PUBLISHes only while
    /// fewer than `quota` messages are in flight.
    pub(crate) fn next_unsent(&self, quota: usize) -> Option<usize> {
        let may_send_acked = self.in_flight() < quota;
        self.slots.iter().position(|s| {
            s.sent_at.is_none()
                && (s.qos == QoS::AtMostOnce || s.stage == Stage::Release || may_send_acked)
        })
    }

    /// The connection is gone: QoS 0 messages are dropped, the others go out again on the
    /// next connection, PUBLISHes that already went out once with the DUP flag.
    pub(crate) fn connection_lost(&mut self) {
        self.slots.retain(|s| s.qos != QoS::AtMostOnce);
        for slot in &mut self.slots {
            if slot.sent_at.take().is_some() && slot.stage == Stage::Publish {
                slot.frame[0] |= DUP;
            }
        }
    }
}
