//! TLS listeners, checked with Mosquitto's own clients: server certificates, client
//! certificates (required or not), the user name a certificate gives, and clear log lines
//! when a handshake fails. Certificates are made in the test with rcgen.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use midge_e2e::{Midge, temp_file};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA and what it signed, written as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// A client certificate for "alice".
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn make_pki(tag: &str) -> Pki {
    let ca = ca(&format!("midge test CA {tag}"));
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "alice");
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: temp_file(&format!("{tag}-ca.pem"), &ca.pem()),
        server_cert: temp_file(&format!("{tag}-server.pem"), &server.pem()),
        server_key: temp_file(&format!("{tag}-server.key"), &server_key.serialize_pem()),
        client_cert: temp_file(&format!("{tag}-client.pem"), &client.pem()),
        client_key: temp_file(&format!("{tag}-client.key"), &client_key.serialize_pem()),
    }
}

/// Two distinct free loopback ports (held together while chosen, so they differ).
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (bind(), bind());
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts midge with a TLS listener on a free port configured by `extra` lines.
fn tls_broker(pki: &Pki, extra: &str) -> (Midge, u16) {
    let (plain, port) = free_ports();
    // The plain listener comes first: the harness takes the first port midge reports.
    let config = format!(
        "allow_anonymous true\nlistener {plain} 127.0.0.1\nlistener {port} 127.0.0.1\n\
         certfile {}\nkeyfile {}\n{extra}",
        path(&pki.server_cert),
        path(&pki.server_key)
    );
    (Midge::start_with_config(&config), port)
}

/// `mosquitto_pub` over TLS to `port` with `args` (--cafile, --cert, --key…).
fn tls_pub(port: u16, args: &[&str]) -> Output {
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            "tls/t",
            "-m",
            "over tls",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mosquitto_pub")
}

/// Subscribes on the plain listener and returns what arrives on `tls/t` within 10 s.
fn plain_sub(midge: &Midge, id: &str) -> std::process::Child {
    let child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &midge.port().to_string(),
            "-i",
            id,
            "-t",
            "tls/t",
        ])
        .args(["-C", "1", "-W", "10"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run mosquitto_sub");
    assert!(midge.wait_for_log(&format!("{id} subscribed to tls/t")));
    child
}

fn received(child: std::process::Child) -> String {
    let out = child.wait_with_output().expect("mosquitto_sub");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tls_listener_serves_clients_that_trust_its_ca() {
    let pki = make_pki("serve");
    let (midge, port) = tls_broker(&pki, "");
    let sub = plain_sub(&midge, "plain-sub");
    let out = tls_pub(port, &["--cafile", path(&pki.ca)]);
    assert!(out.status.success(), "{out:?}\n{}", midge.log());
    assert_eq!(received(sub), "over tls\n");
}

#[test]
fn a_client_that_does_not_trust_the_certificate_fails_and_the_log_says_why() {
    let pki = make_pki("trust");
    let other = make_pki("other");
    let (midge, port) = tls_broker(&pki, "");
    let out = tls_pub(port, &["--cafile", path(&other.ca)]);
    assert!(
        !out.status.success(),
        "a server certificate from an unknown CA is refused"
    );
    assert!(midge.wait_for_log("TLS with 127.0.0.1:"), "{}", midge.log());
    // The broker keeps serving.
    let out = tls_pub(port, &["--cafile", path(&pki.ca)]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn require_certificate_refuses_clients_without_one() {
    let pki = make_pki("require");
    let extra = format!("cafile {}\nrequire_certificate true\n", path(&pki.ca));
    let (midge, port) = tls_broker(&pki, &extra);
    let out = tls_pub(port, &["--cafile", path(&pki.ca)]);
    assert!(!out.status.success(), "no client certificate: refused");
    assert!(midge.wait_for_log("TLS with 127.0.0.1:"), "{}", midge.log());
    let sub = plain_sub(&midge, "req-sub");
    let with_cert = [
        "--cafile",
        path(&pki.ca),
        "--cert",
        path(&pki.client_cert),
        "--key",
        path(&pki.client_key),
    ];
    let out = tls_pub(port, &with_cert);
    assert!(out.status.success(), "{out:?}\n{}", midge.log());
    assert_eq!(received(sub), "over tls\n");
}

#[test]
fn use_identity_as_username_takes_the_user_name_from_the_certificate() {
    let pki = make_pki("identity");
    let acl = temp_file("identity.acl", "user alice\ntopic readwrite tls/#\n");
    let extra = format!(
        "cafile {}\nrequire_certificate true\nuse_identity_as_username true\nacl_file {}\n",
        path(&pki.ca),
        path(&acl)
    );
    let (midge, port) = tls_broker(&pki, &extra);
    let with_cert = [
        "--cafile",
        path(&pki.ca),
        "--cert",
        path(&pki.client_cert),
        "--key",
        path(&pki.client_key),
        "-u",
        "mallory",
        "-i",
        "cert-client",
    ];
    let out = tls_pub(port, &with_cert);
    assert!(out.status.success(), "{out:?}");
    // The certificate's CN, not CONNECT's user name, is who connected.
    assert!(
        midge.wait_for_log("as cert-client (p4, c1, k60, u'alice')"),
        "{}",
        midge.log()
    );
}

#[test]
fn sighup_reloads_the_server_certificate() {
    let old = make_pki("old");
    let new = make_pki("new");
    let (midge, port) = tls_broker(&old, "");
    assert!(tls_pub(port, &["--cafile", path(&old.ca)]).status.success());
    std::fs::copy(&new.server_cert, &old.server_cert).unwrap();
    std::fs::copy(&new.server_key, &old.server_key).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &midge.pid().to_string()])
        .status();
    assert!(hup.is_ok_and(|s| s.success()));
    assert!(
        midge.wait_for_log("reloaded TLS certificates"),
        "{}",
        midge.log()
    );
    assert!(
        tls_pub(port, &["--cafile", path(&new.ca)]).status.success(),
        "new certificate in use"
    );
    assert!(
        !tls_pub(port, &["--cafile", path(&old.ca)]).status.success(),
        "old one no longer"
    );
}

#[test]
fn use_subject_as_username_takes_the_whole_subject() {
    let pki = make_pki("subject");
    let extra = format!(
        "cafile {}\nrequire_certificate true\nuse_subject_as_username true\n",
        path(&pki.ca)
    );
    let (midge, port) = tls_broker(&pki, &extra);
    let with_cert = [
        "--cafile",
        path(&pki.ca),
        "--cert",
        path(&pki.client_cert),
        "--key",
        path(&pki.client_key),
        "-i",
        "subject-client",
    ];
    assert!(tls_pub(port, &with_cert).status.success());
    assert!(
        midge.wait_for_log("as subject-client (p4, c1, k60, u'CN=alice')"),
        "{}",
        midge.log()
    );
}
