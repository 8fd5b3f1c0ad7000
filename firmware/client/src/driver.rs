//! The async driver: runs a [`Client`] over one transport connection.

use embassy_futures::select::{Either, select};
use embassy_time::{Instant, Timer};
use embedded_io_async::{Error as _, Read, Write};
use midge_wire::{DecodeError, Decoded, decode};

use crate::{Client, Error, Event};

/// One connection of a [`Client`] over an established transport (for instance an
/// `embassy_net::tcp::TcpSocket` that has connected to the broker).
///
/// Creating it tells the client the transport is up; the CONNECT goes out on the first
/// [`poll`](Self::poll). When `poll` returns `Err`, drop the connection, close the
/// transport, and wait the delay [`Client::connection_lost`] returns before the next one.
///
/// Holds two `MAX_PACKET` buffers (receive and transmit).
#[derive(Debug)]
pub struct Connection<'c, 'a, T, const MAX_PACKET: usize, const OUTBOX: usize> {
    client: &'c mut Client<'a, MAX_PACKET, OUTBOX>,
    transport: T,
    rx: [u8; MAX_PACKET],
    filled: usize,
    /// Length of the packet the last `poll` returned an event from; dropped at the next.
    consumed: usize,
    /// Bytes still to throw away of a packet too large for `rx`.
    skipping: usize,
    tx: [u8; MAX_PACKET],
}

impl<'c, 'a, T: Read + Write, const MAX_PACKET: usize, const OUTBOX: usize>
    Connection<'c, 'a, T, MAX_PACKET, OUTBOX>
{
    pub fn new(client: &'c mut Client<'a, MAX_PACKET, OUTBOX>, transport: T) -> Self {
        client.connection_opened();
        Self {
            client,
            transport,
            rx: [0; MAX_PACKET],
            filled: 0,
            consumed: 0,
            skipping: 0,
            tx: [0; MAX_PACKET],
        }
    }

    /// The client, to publish while connected (the message goes out on the next `poll`).
    pub fn client(&mut self) -> &mut Client<'a, MAX_PACKET, OUTBOX> {
        self.client
    }

    /// Sends what the client has to send, then waits for the broker until `until`.
    ///
    /// Returns `Ok(Some(event))` for something the application may act on, `Ok(None)`
    /// when a packet needed no attention or `until` has passed (call again; the loop
    /// `while Instant::now() < next_job { conn.poll(next_job).await? }` is typical), and
    /// `Err` when the connection is over.
    ///
    /// Cancel-safety: only the wait for input races the timer; writes are never
    /// interrupted, so the byte stream stays consistent.
    pub async fn poll(&mut self, until: Instant) -> Result<Option<Event<'_>>, Error> {
        self.rx.copy_within(self.consumed..self.filled, 0);
        self.filled -= self.consumed;
        self.consumed = 0;
        let len = loop {
            self.flush().await?;
            if let Some(len) = self.buffered_packet()? {
                break len;
            }
            if !self.receive(until).await? {
                return Ok(None);
            }
        };
        self.consumed = len;
        let Decoded::Complete { packet, .. } =
            decode(&self.rx[..len], &self.client.decode_options())?
        else {
            // buffered_packet() found a complete packet in these very bytes.
            return Err(Error::Malformed(DecodeError::UnexpectedEnd));
        };
        self.client.handle_packet(packet)
    }

    /// Sends a DISCONNECT (the broker then discards our will) and flushes it.
    pub async fn disconnect(mut self) -> Result<(), Error> {
        let len = self.client.disconnect(&mut self.tx)?;
        write_all(&mut self.transport, &self.tx[..len]).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        let mut wrote = false;
        while let Some(len) = self.client.poll_transmit(Instant::now(), &mut self.tx)? {
            write_all(&mut self.transport, &self.tx[..len]).await?;
            wrote = true;
        }
        if wrote {
            self.transport
                .flush()
                .await
                .map_err(|e| Error::Transport(e.kind()))?;
        }
        Ok(())
    }

    /// The length of the whole packet at the start of `rx`, if it is all there. Packets
    /// larger than `MAX_PACKET` (only a 3.1.1 broker can send them: MQTT 5 brokers honour
    /// our Maximum Packet Size) are skipped rather than ending the connection, so one
    /// oversized retained message cannot lock the device in a reconnect loop.
    fn buffered_packet(&mut self) -> Result<Option<usize>, Error> {
        loop {
            if self.skipping > 0 {
                let n = self.skipping.min(self.filled);
                self.rx.copy_within(n..self.filled, 0);
                self.filled -= n;
                self.skipping -= n;
                if self.skipping > 0 {
                    return Ok(None);
                }
            }
            match decode(&self.rx[..self.filled], &self.client.decode_options()) {
                Ok(Decoded::Complete { len, .. }) => return Ok(Some(len)),
                Ok(Decoded::Incomplete { .. }) => return Ok(None),
                Err(DecodeError::PacketTooLarge { size, .. }) => self.skipping = size,
                Err(e) => return Err(Error::Malformed(e)),
            }
        }
    }

    /// Reads more bytes, or handles the client's deadlines. `Ok(false)` once `until` has
    /// passed.
    async fn receive(&mut self, until: Instant) -> Result<bool, Error> {
        let deadline = self.client.poll_timeout().map_or(until, |t| t.min(until));
        match select(
            self.transport.read(&mut self.rx[self.filled..]),
            Timer::at(deadline),
        )
        .await
        {
            Either::First(Ok(0)) => Err(Error::Closed),
            Either::First(Ok(n)) => {
                self.filled += n;
                Ok(true)
            }
            Either::First(Err(e)) => Err(Error::Transport(e.kind())),
            Either::Second(()) => {
                let now = Instant::now();
                self.client.handle_timeout(now)?;
                Ok(now < until)
            }
        }
    }
}

async fn write_all<T: Write>(transport: &mut T, bytes: &[u8]) -> Result<(), Error> {
    transport
        .write_all(bytes)
        .await
        .map_err(|e| Error::Transport(e.kind()))
}
