//! midge: an MQTT 3.1/3.1.1/5.0 broker for Raspberry Pi-class hardware.
//!
//! The protocol logic ([`connection`], [`session`], [`broker`]) does no I/O; [`server`] is
//! the tokio shell around it.

pub mod auth;
pub mod broker;
pub mod config;
pub mod connection;
pub mod keep_alive;
pub mod locks;
pub mod message;
pub mod passwd_cli;
pub mod persist;
pub mod properties;
pub mod rate_limit;
pub mod restore;
pub mod retain;
pub mod security;
pub mod server;
pub mod session;
pub mod shared;
pub mod signal;
pub mod stats;
pub mod subscriptions;
pub mod sys;
pub mod systemd;
pub mod tls;
pub mod will;
