//! Command-line options.

use core::net::Ipv4Addr;
use embassy_net::{Config, Ipv4Cidr, StaticConfigV4};

pub const USAGE: &str = "usage: midge-linux-tap --tap NAME --broker HOST --device-id ID \
[--ip A.B.C.D/N --gateway A.B.C.D --dns A.B.C.D] [--port N] [--period-ms N] \
[--keep-alive SECS] [--timeout-ms N] [--backoff-max-ms N] [--v5] [--coap]";

#[derive(Debug)]
pub struct Args {
    pub tap: String,
    pub broker: String,
    pub device_id: String,
    pub ip: Option<Ipv4Cidr>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub period_ms: u64,
    pub keep_alive_secs: u16,
    pub timeout_ms: u64,
    pub backoff_max_ms: u64,
    pub v5: bool,
    pub coap: bool,
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut tap = None;
        let mut broker = None;
        let mut device_id = None;
        let mut parsed = Args {
            tap: String::new(),
            broker: String::new(),
            device_id: String::new(),
            ip: None,
            gateway: None,
            dns: None,
            port: None,
            period_ms: 1000,
            keep_alive_secs: 60,
            timeout_ms: 10_000,
            backoff_max_ms: 60_000,
            v5: false,
            coap: false,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--tap" => tap = Some(value()?),
                "--broker" => broker = Some(value()?),
                "--device-id" => device_id = Some(value()?),
                "--ip" => parsed.ip = Some(parse_cidr(&value()?)?),
                "--gateway" => parsed.gateway = Some(number(&flag, &value()?)?),
                "--dns" => parsed.dns = Some(number(&flag, &value()?)?),
                "--port" => parsed.port = Some(number(&flag, &value()?)?),
                "--period-ms" => parsed.period_ms = number(&flag, &value()?)?,
                "--keep-alive" => parsed.keep_alive_secs = number(&flag, &value()?)?,
                "--timeout-ms" => parsed.timeout_ms = number(&flag, &value()?)?,
                "--backoff-max-ms" => parsed.backoff_max_ms = number(&flag, &value()?)?,
                "--v5" => parsed.v5 = true,
                "--coap" => parsed.coap = true,
                other => return Err(format!("unknown option {other}")),
            }
        }
        parsed.tap = tap.ok_or("--tap is required")?;
        parsed.broker = broker.ok_or("--broker is required")?;
        parsed.device_id = device_id.ok_or("--device-id is required")?;
        Ok(parsed)
    }

    /// Static IPv4 with `--ip`, DHCP without.
    pub fn net_config(&self) -> Config {
        let Some(address) = self.ip else {
            return Config::dhcpv4(Default::default());
        };
        let mut dns_servers = heapless::Vec::new();
        if let Some(dns) = self.dns {
            let _ = dns_servers.push(dns);
        }
        Config::ipv4_static(StaticConfigV4 {
            address,
            gateway: self.gateway,
            dns_servers,
        })
    }
}

fn number<T: core::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a valid value"))
}

fn parse_cidr(value: &str) -> Result<Ipv4Cidr, String> {
    let (ip, len) = value
        .split_once('/')
        .ok_or_else(|| format!("--ip: {value:?} is not ADDRESS/PREFIX"))?;
    let ip: Ipv4Addr = number("--ip", ip)?;
    let len: u8 = number("--ip", len)?;
    if len > 32 {
        return Err(format!("--ip: prefix length {len} over 32"));
    }
    Ok(Ipv4Cidr::new(ip, len))
}
