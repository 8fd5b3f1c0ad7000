//! Idle connections: how much memory each idle subscribed client costs the broker, and
//! how fast the broker takes a storm of them (connect, CONNACK, SUBSCRIBE, SUBACK).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use midge_wire::{Packet, QoS};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::{Outcome, Settings};
use crate::broker::Broker;
use crate::mqtt::{Client, PublishTemplate, Stamp};
use crate::proc::{Memory, nofile_limit};

/// Connections being set up at once.
const CONCURRENCY: usize = 256;
/// Connections per source address: the loopback ephemeral port range (32768-60999 by
/// default) holds about 28k, so larger runs spread over 127.0.0.2, .3 …
const PER_SOURCE: usize = 20_000;

pub async fn run(broker: &mut Broker, s: &Settings) -> Result<Outcome, String> {
    let addr = broker.addr;
    // Each connection is a descriptor here and one in the broker; keep some spare.
    let fit = usize::try_from(nofile_limit())
        .unwrap_or(usize::MAX)
        .saturating_sub(100);
    let c = s.conns.min(fit).max(1);
    if c < s.conns {
        eprintln!(
            "conns: {} connections asked for, {c} fit the open-file limit; raise the hard \
             limit (ulimit -Hn) for more",
            s.conns
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = Memory::of(broker.pid()).map_err(|e| e.to_string())?;

    let start = Instant::now();
    let mut pending = JoinSet::new();
    let mut clients = Vec::with_capacity(c);
    for i in 0..c {
        if pending.len() >= CONCURRENCY {
            clients.push(joined(pending.join_next().await)?);
        }
        let source = (c > PER_SOURCE)
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / PER_SOURCE) as u8)));
        pending.spawn(async move {
            let mut client = Client::connect_from(source, addr, &format!("bench-idle-{i}")).await?;
            client
                .subscribe(&format!("bench/idle/{i}"), QoS::AtLeastOnce)
                .await?;
            Ok((i, client))
        });
    }
    while let Some(r) = pending.join_next().await {
        clients.push(joined(Some(r))?);
    }
    let setup = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = Memory::of(broker.pid()).map_err(|e| e.to_string())?;
    broker.check_alive()?;

    // The connections are live subscribers, not just open sockets: a message to the
    // first, middle and last one arrives.
    clients.sort_unstable_by_key(|(i, _)| *i);
    let mut publisher = Client::connect(addr, "bench-idle-publisher")
        .await
        .map_err(|e| e.to_string())?;
    for i in [0, c / 2, c - 1] {
        let topic = format!("bench/idle/{i}");
        let mut frame = Vec::new();
        PublishTemplate::new(&topic, QoS::AtMostOnce, Stamp::LEN).append(
            &mut frame,
            0,
            Stamp {
                publisher: 0,
                seq: i as u64,
                due_ns: 0,
            },
        );
        publisher
            .writer
            .write_all(&frame)
            .await
            .map_err(|e| e.to_string())?;
        let got = tokio::time::timeout(
            Duration::from_secs(5),
            clients[i].1.reader.next(|p| match p {
                Packet::Publish(p) => p.topic == topic,
                _ => false,
            }),
        )
        .await;
        if !matches!(got, Ok(Ok(true))) {
            return Err(format!(
                "idle subscriber {i} did not get a message to {topic}"
            ));
        }
    }

    let mut outcome = Outcome::default();
    outcome.metric("connections", c as f64);
    outcome.metric(
        "RSS per idle connection [B]",
        (after.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / c as f64,
    );
    outcome.metric(
        "RSS with all connected [MiB]",
        after.rss_kib as f64 / 1024.0,
    );
    outcome.metric(
        "connection setup rate [conn/s]",
        c as f64 / setup.as_secs_f64(),
    );
    Ok(outcome)
}

type Connected = (usize, Client);

fn joined(
    r: Option<Result<std::io::Result<Connected>, tokio::task::JoinError>>,
) -> Result<Connected, String> {
    match r {
        Some(Ok(Ok(c))) => Ok(c),
        Some(Ok(Err(e))) => Err(format!("idle connection: {e}")),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no connection task left".to_owned()),
    }
}
