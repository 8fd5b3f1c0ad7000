//! Who may connect and what they may do: Mosquitto password and ACL files.

pub mod access;
pub mod acl;
pub mod password;
