//! The consortium PKI end to end: real files in a temporary directory, real certificates read
//! back with x509-parser, and real rustls handshakes over loopback TCP.

// Tests: a failed expectation is the failure we want, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use lading_domain::ids::PartyId;
use lading_pki::{
    client_config, client_config_for, client_verifier, parse_certs, parse_key, party_of, Ca,
    PkiError, ServerIdentity, Subject, WrongServer, CA_CERT_FILE, CA_KEY_FILE,
};
use rustls::version::{TLS12, TLS13};
use rustls::SupportedProtocolVersion;
use x509_parser::extensions::GeneralName;

fn pid(s: &str) -> PartyId {
    s.parse().expect("a valid party id")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn x509(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).expect("an X.509 certificate");
    assert!(rest.is_empty());
    cert
}

fn der_of(pem: &str) -> Vec<u8> {
    parse_certs(pem)
        .expect("PEM certificate")
        .remove(0)
        .to_vec()
}

const DAY: i64 = 86_400;

#[test]
fn ca_create_then_load_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("consortium-ca");
    let ca = Ca::create(&dir, "Lading test consortium CA").unwrap();

    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    assert_eq!(std::fs::read_to_string(&cert_path).unwrap(), ca.cert_pem());
    assert_eq!(mode(&cert_path), 0o644, "the CA certificate is public");
    assert_eq!(mode(&key_path), 0o600, "the CA key is owner-only");
    assert_eq!(
        mode(&dir),
        0o700,
        "a directory made for a key is owner-only"
    );
    assert!(std::fs::read_to_string(&key_path)
        .unwrap()
        .contains("PRIVATE KEY"));

    // What the certificate says.
    let cert = x509(ca.cert_der());
    assert_eq!(cert.subject(), cert.issuer(), "self-signed");
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "Lading test consortium CA");
    let bc = cert.basic_constraints().unwrap().expect("basicConstraints");
    assert!(bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    let ku = cert.key_usage().unwrap().expect("keyUsage");
    assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
    assert!(!ku.value.digital_signature());
    let v = cert.validity();
    let days = (v.not_after.timestamp() - v.not_before.timestamp()) / DAY;
    assert!(
        (3650..=3651).contains(&days),
        "about ten years, got {days} days"
    );
    assert_eq!(
        cert.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
    );

    // Loaded back: the same certificate, and a key that still signs for it.
    let loaded = Ca::load(&dir).unwrap();
    assert_eq!(loaded.cert_pem(), ca.cert_pem());
    assert_eq!(loaded.cert_der(), ca.cert_der());
    let leaf = loaded.issue_party(&pid("shipper-acme"), &[]).unwrap();
    let leaf_der = rustls_pki_types::CertificateDer::from(der_of(&leaf.cert_pem));
    let verifier = client_verifier(ca.cert_pem()).unwrap();
    verifier
        .verify_client_cert(&leaf_der, &[], rustls_pki_types::UnixTime::now())
        .expect("a certificate from the loaded CA verifies against the created CA");
    // The leaf's issuer is the CA's subject, and its authority key id is the CA's key id.
    let leaf_x509 = x509(&leaf_der);
    assert_eq!(leaf_x509.issuer(), cert.subject());
}

#[test]
fn a_ca_is_never_created_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = Ca::create(dir, "first").unwrap();
    let key_before = std::fs::read(dir.join(CA_KEY_FILE)).unwrap();

    match Ca::create(dir, "second") {
        Err(PkiError::Exists(path)) => assert!(path.starts_with(dir)),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(std::fs::read(dir.join(CA_KEY_FILE)).unwrap(), key_before);
    assert_eq!(
        std::fs::read_to_string(dir.join(CA_CERT_FILE)).unwrap(),
        first.cert_pem()
    );

    // Asked to load it if it is there: the same CA, not a new one.
    let (again, created) = Ca::load_or_create(dir, "second").unwrap();
    assert!(!created);
    assert_eq!(again.cert_pem(), first.cert_pem());

    // A key without its certificate is not silently replaced either.
    std::fs::remove_file(dir.join(CA_CERT_FILE)).unwrap();
    match Ca::create(dir, "third") {
        Err(PkiError::Exists(path)) => assert_eq!(path, dir.join(CA_KEY_FILE)),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert!(matches!(
        Ca::load_or_create(dir, "third"),
        Err(PkiError::Exists(_))
    ));
    assert_eq!(std::fs::read(dir.join(CA_KEY_FILE)).unwrap(), key_before);
    assert!(!dir.join(CA_CERT_FILE).exists());

    // Into an empty directory, load_or_create creates.
    let fresh = tmp.path().join("fresh");
    let (_, created) = Ca::load_or_create(&fresh, "fresh").unwrap();
    assert!(created);
}

#[test]
fn load_refuses_a_key_that_is_not_the_cas() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    Ca::create(&a, "a").unwrap();
    Ca::create(&b, "b").unwrap();
    std::fs::copy(b.join(CA_KEY_FILE), a.join(CA_KEY_FILE)).unwrap();
    assert!(matches!(Ca::load(&a), Err(PkiError::KeyMismatch { .. })));

    // A party certificate is not a CA, even with its own key next to it.
    let c = tmp.path().join("c");
    std::fs::create_dir(&c).unwrap();
    let leaf = Ca::load(&b)
        .unwrap()
        .issue_party(&pid("carrier-oceanic"), &[])
        .unwrap();
    std::fs::write(c.join(CA_CERT_FILE), &leaf.cert_pem).unwrap();
    std::fs::write(c.join(CA_KEY_FILE), &leaf.key_pem).unwrap();
    assert!(matches!(Ca::load(&c), Err(PkiError::NotCa(_))));

    assert!(matches!(
        Ca::load(&tmp.path().join("missing")),
        Err(PkiError::Io { .. })
    ));
}

#[test]
fn a_party_certificate_names_its_party() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::create(tmp.path(), "ca").unwrap();

    // Client only.
    let client = ca.issue_party(&pid("shipper-acme"), &[]).unwrap();
    let der = der_of(&client.cert_pem);
    assert_eq!(party_of(&der).unwrap(), pid("shipper-acme"));
    let cert = x509(&der);
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "shipper-acme");
    assert!(!cert.is_ca());
    let eku = cert
        .extended_key_usage()
        .unwrap()
        .expect("extendedKeyUsage");
    assert!(eku.value.client_auth);
    assert!(!eku.value.server_auth, "no server names, no serverAuth");
    let ku = cert.key_usage().unwrap().expect("keyUsage");
    assert!(ku.value.digital_signature() && !ku.value.key_cert_sign());
    let v = cert.validity();
    let days = (v.not_after.timestamp() - v.not_before.timestamp()) / DAY;
    assert!((365..=366).contains(&days), "about a year, got {days} days");
    assert!(v.is_valid(), "valid from now");

    // Client and server.
    let names = vec!["replica.shipper.example".to_owned(), "127.0.0.1".to_owned()];
    let both = ca.issue_party(&pid("shipper-acme"), &names).unwrap();
    let der = der_of(&both.cert_pem);
    assert_eq!(party_of(&der).unwrap(), pid("shipper-acme"));
    let cert = x509(&der);
    let eku = cert.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.client_auth && eku.value.server_auth);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names = &san.value.general_names;
    assert!(names.contains(&GeneralName::URI("urn:lading:party:shipper-acme")));
    assert!(names.contains(&GeneralName::DNSName("replica.shipper.example")));
    assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
    assert_eq!(names.len(), 3);

    // Each issue has a key of its own.
    assert_ne!(client.key_pem, both.key_pem);

    // A server name that is neither a DNS name nor an IP address is refused.
    assert!(matches!(
        ca.issue_party(&pid("shipper-acme"), &["not a host!".to_owned()]),
        Err(PkiError::ServerName(_))
    ));
}

#[test]
fn the_registry_certificate_names_the_registry_and_no_party() {
    use lading_pki::{subject_of, Subject};
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::create(tmp.path(), "ca").unwrap();
    let registry = ca
        .issue(&Subject::Registry, &["registry.example".to_owned()])
        .unwrap();
    let der = der_of(&registry.cert_pem);
    assert_eq!(subject_of(&der).unwrap(), Subject::Registry);
    assert!(matches!(party_of(&der), Err(PkiError::NoParty)));
    let files = registry.write(&tmp.path().join("out")).unwrap();
    assert!(files.cert.ends_with("registry.crt.pem"));

    // A party's certificate is the party, even one whose id is "registry".
    let party = ca.issue_party(&pid("registry"), &[]).unwrap();
    assert_eq!(
        subject_of(&der_of(&party.cert_pem)).unwrap(),
        Subject::Party(pid("registry"))
    );
    // Both at once is refused.
    let both = foreign_cert(vec![uri("urn:lading:registry"), uri("urn:lading:party:a")]);
    assert!(subject_of(&both).is_err());
    // One certificate, one verdict: the party reading refuses it as well.
    assert!(party_of(&both).is_err());
}

/// A certificate made with rcgen directly, with exactly the given SANs.
fn foreign_cert(sans: Vec<rcgen::SanType>) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = sans;
    params.self_signed(&key).unwrap().der().to_vec()
}

fn uri(s: &str) -> rcgen::SanType {
    rcgen::SanType::URI(s.try_into().unwrap())
}

#[test]
fn party_of_refuses_a_certificate_that_names_no_valid_party() {
    // No SAN extension at all.
    assert!(matches!(
        party_of(&foreign_cert(vec![])),
        Err(PkiError::NoParty)
    ));
    // SANs, but not a party URI.
    let dns = rcgen::SanType::DnsName("shipper-acme".try_into().unwrap());
    assert!(matches!(
        party_of(&foreign_cert(vec![
            dns,
            uri("https://shipper-acme.example/")
        ])),
        Err(PkiError::NoParty)
    ));
    // A party id the ledger could not name.
    assert!(matches!(
        party_of(&foreign_cert(vec![uri("urn:lading:party:Shipper_ACME")])),
        Err(PkiError::InvalidParty(_))
    ));
    assert!(matches!(
        party_of(&foreign_cert(vec![uri("urn:lading:party:")])),
        Err(PkiError::InvalidParty(_))
    ));
    // Two parties in one certificate.
    assert!(matches!(
        party_of(&foreign_cert(vec![
            uri("urn:lading:party:shipper-acme"),
            uri("urn:lading:party:carrier-oceanic"),
        ])),
        Err(PkiError::SeveralParties(..))
    ));
    // The same party twice is still one party.
    assert_eq!(
        party_of(&foreign_cert(vec![
            uri("urn:lading:party:shipper-acme"),
            uri("urn:lading:party:shipper-acme"),
        ]))
        .unwrap(),
        pid("shipper-acme")
    );
    // Not a certificate; a certificate with trailing bytes.
    assert!(matches!(
        party_of(b"not a certificate"),
        Err(PkiError::Certificate(_))
    ));
    let mut padded = foreign_cert(vec![uri("urn:lading:party:shipper-acme")]);
    padded.push(0);
    assert!(matches!(party_of(&padded), Err(PkiError::Certificate(_))));
}

#[test]
fn party_files_are_written_once_with_owner_only_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::create(&tmp.path().join("ca"), "ca").unwrap();
    let out = tmp.path().join("parties/shipper");
    let party = ca.issue_party(&pid("shipper-acme"), &[]).unwrap();
    let files = party.write(&out).unwrap();
    assert_eq!(files.cert, out.join("shipper-acme.crt.pem"));
    assert_eq!(files.key, out.join("shipper-acme.key.pem"));
    assert_eq!(mode(&files.key), 0o600);
    assert_eq!(mode(&files.cert), 0o644);
    assert_eq!(
        std::fs::read_to_string(&files.cert).unwrap(),
        party.cert_pem
    );
    assert_eq!(std::fs::read_to_string(&files.key).unwrap(), party.key_pem);
    assert!(
        !format!("{party:?}").contains("PRIVATE KEY"),
        "Debug never shows the key"
    );

    let second = ca.issue_party(&pid("shipper-acme"), &[]).unwrap();
    assert!(matches!(second.write(&out), Err(PkiError::Exists(_))));
    assert_eq!(std::fs::read_to_string(&files.key).unwrap(), party.key_pem);
    assert_eq!(
        std::fs::read_to_string(&files.cert).unwrap(),
        party.cert_pem
    );
}

// ---------------------------------------------------------------------------------------------
// Real TLS over loopback.

const ALL_VERSIONS: [&SupportedProtocolVersion; 2] = [&TLS13, &TLS12];

/// A registry-like server: the consortium's client verifier and a server certificate.
fn server_config(
    ca: &Ca,
    server: &lading_pki::PartyCert,
    version: &'static SupportedProtocolVersion,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_client_cert_verifier(client_verifier(ca.cert_pem()).unwrap())
        .with_single_cert(
            parse_certs(&server.cert_pem).unwrap(),
            parse_key(&server.key_pem).unwrap(),
        )
        .unwrap();
    Arc::new(config)
}

/// What the server saw of one connection: the peer's certificate, or the TLS error.
type Seen = Result<Option<Vec<u8>>, std::io::Error>;

/// Serves one connection: reads the client's line, answers "ok", and reports the peer's leaf
/// certificate (None for a client without one).
fn serve_once(config: Arc<rustls::ServerConfig>) -> (std::net::SocketAddr, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (tcp, _) = listener.accept()?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf)?;
        assert_eq!(&buf[..n], b"hello\n");
        let peer = tls
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.to_vec());
        tls.write_all(b"ok\n")?;
        tls.flush()?;
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Ok(peer)
    });
    (addr, handle)
}

/// Connects to "localhost" at `addr`, says hello and returns the answer.
fn talk(addr: std::net::SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"hello\n")?;
    tls.flush()?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Whether the handshake failed because the certificate is not from the consortium CA: an
/// unknown issuer, or (the foreign CA here bears the very same name as ours) an issuer found by
/// name whose key did not make the signature.
fn refused_as_foreign(e: &std::io::Error) -> bool {
    use rustls::CertificateError::{BadSignature, UnknownIssuer};
    matches!(
        e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(
            UnknownIssuer | BadSignature
        ))
    )
}

/// A consortium (CA, registry server certificate, one party) and a foreign CA.
struct World {
    _tmp: tempfile::TempDir,
    ca: Ca,
    registry: lading_pki::PartyCert,
    party: lading_pki::PartyCert,
    other_ca: Ca,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    Ca::create(&tmp.path().join("ca"), "Lading test consortium CA").unwrap();
    // Everything below is signed by the CA as loaded back from its files.
    let ca = Ca::load(&tmp.path().join("ca")).unwrap();
    let registry = ca
        .issue_party(&pid("registry"), &["localhost".to_owned()])
        .unwrap();
    let party = ca.issue_party(&pid("carrier-oceanic"), &[]).unwrap();
    let other_ca = Ca::create(&tmp.path().join("other"), "Lading test consortium CA").unwrap();
    World {
        _tmp: tmp,
        ca,
        registry,
        party,
        other_ca,
    }
}

#[test]
fn tls_accepts_a_party_certificate_of_the_consortium_and_names_the_party() {
    let w = world();
    for version in ALL_VERSIONS {
        let (addr, server) = serve_once(server_config(&w.ca, &w.registry, version));
        let client = client_config(w.ca.cert_pem(), &w.party.cert_pem, &w.party.key_pem).unwrap();
        let answer = talk(addr, client).unwrap();
        assert_eq!(answer, "ok\n", "{version:?}");
        let peer = server
            .join()
            .unwrap()
            .unwrap()
            .expect("the server sees the client certificate");
        assert_eq!(party_of(&peer).unwrap(), pid("carrier-oceanic"));
        assert_eq!(peer, der_of(&w.party.cert_pem));
    }
}

#[test]
fn tls_refuses_a_client_certificate_from_another_ca() {
    let w = world();
    // Same party name, same CA name, different CA key: only the signature tells them apart.
    let impostor = w
        .other_ca
        .issue_party(&pid("carrier-oceanic"), &[])
        .unwrap();
    for version in ALL_VERSIONS {
        let (addr, server) = serve_once(server_config(&w.ca, &w.registry, version));
        // The impostor trusts the real CA, so the client side of the handshake is fine.
        let client = client_config(w.ca.cert_pem(), &impostor.cert_pem, &impostor.key_pem).unwrap();
        let answer = talk(addr, client);
        assert!(answer.is_err(), "{version:?}: the client got {answer:?}");
        let seen = server.join().unwrap();
        let err = seen.expect_err("the server must refuse the handshake");
        assert!(refused_as_foreign(&err), "{version:?}: {err:?}");
    }
}

#[test]
fn tls_lets_a_client_without_certificate_through_with_no_party() {
    let w = world();
    let (addr, server) = serve_once(server_config(&w.ca, &w.registry, &TLS13));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(parse_certs(w.ca.cert_pem()).unwrap().remove(0))
        .unwrap();
    let anonymous = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert_eq!(talk(addr, Arc::new(anonymous)).unwrap(), "ok\n");
    // No certificate: the replication endpoints have nothing to map and must refuse.
    assert_eq!(server.join().unwrap().unwrap(), None);
}

#[test]
fn a_replica_refuses_a_registry_with_a_certificate_from_another_ca() {
    let w = world();
    let fake_registry = w
        .other_ca
        .issue_party(&pid("registry"), &["localhost".to_owned()])
        .unwrap();
    let (addr, server) = serve_once(server_config(&w.ca, &fake_registry, &TLS13));
    let client = client_config(w.ca.cert_pem(), &w.party.cert_pem, &w.party.key_pem).unwrap();
    let err = talk(addr, client).expect_err("the replica must refuse the server");
    assert!(refused_as_foreign(&err), "{err:?}");
    assert!(server.join().unwrap().is_err());
}

/// Whether the handshake failed because the server's certificate names the wrong subject.
fn refused_as_wrong_server(e: &std::io::Error) -> Option<String> {
    match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) => other
            .0
            .downcast_ref::<WrongServer>()
            .map(|w| w.found.clone()),
        _ => None,
    }
}

/// Every member's certificate chains to the one CA, and a party's may carry any server name:
/// a replica following the registry requires the registry's own subject, so a party
/// certificate issued for the registry's very host name is refused before a byte is sent.
#[test]
fn a_replica_talks_only_to_a_server_whose_certificate_names_the_registry() {
    let w = world();
    let registry =
        w.ca.issue(&Subject::Registry, &["localhost".to_owned()])
            .unwrap();
    let impostor =
        w.ca.issue_party(&pid("shipper-acme"), &["localhost".to_owned()])
            .unwrap();
    let as_replica = |server| {
        client_config_for(w.ca.cert_pem(), &w.party.cert_pem, &w.party.key_pem, server).unwrap()
    };
    for version in ALL_VERSIONS {
        let (addr, server) = serve_once(server_config(&w.ca, &registry, version));
        assert_eq!(
            talk(addr, as_replica(ServerIdentity::Registry)).unwrap(),
            "ok\n"
        );
        assert!(server.join().unwrap().is_ok());

        let (addr, server) = serve_once(server_config(&w.ca, &impostor, version));
        let err = talk(addr, as_replica(ServerIdentity::Registry))
            .expect_err("a party's certificate must not pass for the registry");
        assert_eq!(
            refused_as_wrong_server(&err).as_deref(),
            Some("urn:lading:party:shipper-acme"),
            "{version:?}: {err:?}"
        );
        assert!(server.join().unwrap().is_err(), "the server heard nothing");
        // The CA's word alone would have let it through.
        let (addr, server) = serve_once(server_config(&w.ca, &impostor, version));
        let plain = client_config(w.ca.cert_pem(), &w.party.cert_pem, &w.party.key_pem).unwrap();
        assert_eq!(talk(addr, plain).unwrap(), "ok\n");
        assert!(server.join().unwrap().is_ok());

        // A peer is a party, and never the registry.
        let (addr, server) = serve_once(server_config(&w.ca, &impostor, version));
        assert_eq!(
            talk(addr, as_replica(ServerIdentity::AnyParty)).unwrap(),
            "ok\n"
        );
        assert!(server.join().unwrap().is_ok());
        let (addr, server) = serve_once(server_config(&w.ca, &registry, version));
        let err = talk(addr, as_replica(ServerIdentity::AnyParty)).unwrap_err();
        assert_eq!(
            refused_as_wrong_server(&err).as_deref(),
            Some("urn:lading:registry")
        );
        assert!(server.join().unwrap().is_err());
    }
}

/// The registry reconciling one party's replica requires that party's certificate: another
/// member's replica, reached at the configured address, cannot answer (or be accused) for it.
#[test]
fn the_registry_talks_to_a_partys_replica_only_if_the_certificate_names_that_party() {
    let w = world();
    let shipper =
        w.ca.issue_party(&pid("shipper-acme"), &["localhost".to_owned()])
            .unwrap();
    let carrier =
        w.ca.issue_party(&pid("carrier-maersk"), &["localhost".to_owned()])
            .unwrap();
    let registry =
        w.ca.issue(&Subject::Registry, &["localhost".to_owned()])
            .unwrap();
    let as_registry = |server| {
        client_config_for(
            w.ca.cert_pem(),
            &registry.cert_pem,
            &registry.key_pem,
            server,
        )
        .unwrap()
    };
    for version in ALL_VERSIONS {
        let expect_shipper = || ServerIdentity::Party(pid("shipper-acme"));
        let (addr, server) = serve_once(server_config(&w.ca, &shipper, version));
        assert_eq!(talk(addr, as_registry(expect_shipper())).unwrap(), "ok\n");
        assert!(server.join().unwrap().is_ok());

        for other in [&carrier, &registry] {
            let (addr, server) = serve_once(server_config(&w.ca, other, version));
            let err = talk(addr, as_registry(expect_shipper()))
                .expect_err("another member must not answer for shipper-acme");
            assert!(
                refused_as_wrong_server(&err).is_some(),
                "{version:?}: {err:?}"
            );
            assert!(server.join().unwrap().is_err(), "the server heard nothing");
        }
    }
}

#[test]
fn client_config_refuses_a_key_that_is_not_the_certificates() {
    let w = world();
    let err = client_config(w.ca.cert_pem(), &w.party.cert_pem, &w.registry.key_pem);
    assert!(matches!(err, Err(PkiError::Tls(_))), "{err:?}");
    assert!(matches!(
        client_config(w.ca.cert_pem(), "no pem here", &w.party.key_pem),
        Err(PkiError::Pem { .. })
    ));
}
