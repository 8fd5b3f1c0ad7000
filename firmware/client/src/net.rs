//! Reaching the broker over an embassy-net stack: IP literal or DNS name, then TCP.

use core::fmt;
use core::net::Ipv4Addr;
use embassy_net::dns::{self, DnsQueryType};
use embassy_net::tcp::{self, TcpSocket};
use embassy_net::{IpAddress, Stack};
use embassy_time::Duration;

use crate::Broker;

/// Why [`connect`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectError {
    /// The DNS query failed (no DNS server, no answer, invalid name).
    Dns(dns::Error),
    /// The name resolved to no IPv4 address.
    NoAddress,
    /// The TCP handshake failed (refused, timed out, no route).
    Tcp(tcp::ConnectError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(e) => write!(f, "DNS lookup failed: {e:?}"),
            Self::NoAddress => f.write_str("DNS name has no IPv4 address"),
            Self::Tcp(e) => write!(f, "TCP connect failed: {e:?}"),
        }
    }
}

impl core::error::Error for ConnectError {}

/// The broker's address: parsed if `host` is an IPv4 literal, looked up with the stack's
/// DNS servers (from DHCP or static configuration) otherwise.
pub async fn resolve(stack: Stack<'_>, host: &str) -> Result<IpAddress, ConnectError> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(IpAddress::Ipv4(ip));
    }
    let addresses = stack
        .dns_query(host, DnsQueryType::A)
        .await
        .map_err(ConnectError::Dns)?;
    addresses.first().copied().ok_or(ConnectError::NoAddress)
}

/// Resolves the broker and connects `socket` to it. `timeout` bounds the TCP handshake
/// and stays set on the socket, so data the broker never acknowledges also ends the
/// connection.
pub async fn connect(
    stack: Stack<'_>,
    socket: &mut TcpSocket<'_>,
    broker: &Broker<'_>,
    timeout: Duration,
) -> Result<(), ConnectError> {
    let ip = resolve(stack, broker.host).await?;
    socket.set_timeout(Some(timeout));
    socket
        .connect((ip, broker.port))
        .await
        .map_err(ConnectError::Tcp)
}
