//! The gateway's broker connection over TLS (rustls), against a midge TLS listener with
//! a certificate made here by rcgen.

use coap_lite::RequestType;
use midge_e2e::gateway::{CoapSocket, Gateway, code, con, unique_topic};
use midge_e2e::{Midge, MosquittoSub, temp_file, unique_client_id};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

#[test]
fn publishes_through_a_tls_broker_connection() {
    let authority = ca("gateway test CA");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &authority)
        .unwrap();
    let ca_file = temp_file("gw-ca.pem", &authority.pem());
    let cert_file = temp_file("gw-server.pem", &cert.pem());
    let key_file = temp_file("gw-server.key", &key.serialize_pem());
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (bind(), bind());
    let (plain, tls) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    drop((a, b));
    // The plain listener comes first: the harness takes the first port midge reports.
    let midge = Midge::start_with_config(&format!(
        "allow_anonymous true\nlistener {plain} 127.0.0.1\nlistener {tls} 127.0.0.1\n\
         certfile {}\nkeyfile {}\n",
        cert_file.display(),
        key_file.display()
    ));
    let broker = format!("127.0.0.1:{tls}");
    let gateway = Gateway::start_with(&[
        "--broker",
        &broker,
        "--tls",
        "--cafile",
        ca_file.to_str().unwrap(),
    ]);
    let topic = unique_topic("gw-tls");
    let sub = MosquittoSub::start(
        &midge,
        &unique_client_id("tls"),
        &topic,
        &["-t", &topic, "-C", "1"],
    );
    let coap = CoapSocket::new(&gateway);
    let mut put = con(RequestType::Put, 1, &format!("ps/{topic}"), &[]);
    put.payload = b"over tls".to_vec();
    assert_eq!(code(&coap.exchange(&put)), "2.04");
    assert_eq!(sub.text(), "over tls\n");

    // A gateway that trusts another CA cannot connect: 5.03.
    let other_ca = temp_file("gw-other-ca.pem", &ca("another CA").pem());
    let distrustful = Gateway::start_with(&[
        "--broker",
        &broker,
        "--tls",
        "--cafile",
        other_ca.to_str().unwrap(),
    ]);
    let coap = CoapSocket::new(&distrustful);
    assert_eq!(code(&coap.exchange(&put)), "5.03");
}
