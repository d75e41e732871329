//! A consortium for end-to-end tests: a CA made with `lading ca`, the registry's certificate
//! and the parties' (all for 127.0.0.1), and real `lading serve` / `lading replica` processes
//! on their own throwaway databases, each talking mutual TLS.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::StatusCode;
use serde_json::Value;

use crate::gen::fixtures_dir;
use crate::harness::{get, run_lading, ReplicaProcess, Server, ServerOptions, TestDb, Tls};

/// A temporary path as the `&str` a command line takes.
pub fn path(p: &Path) -> Result<&str> {
    p.to_str().context("temporary paths are UTF-8")
}

/// The URL of a replica listening on `port` (as a peer is named).
pub fn replica_url(port: u16) -> String {
    format!("https://127.0.0.1:{port}")
}

/// A consortium CA, the registry's certificate and the parties' (all for 127.0.0.1).
#[derive(Debug)]
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A new CA with certificates for the registry and each of `parties`.
    pub fn new(parties: &[&str]) -> Result<Self> {
        let pki = Self {
            dir: tempfile::tempdir()?,
        };
        let (ca, issued) = (pki.ca_dir(), pki.issued());
        run_lading(&["ca", "init", "--dir", path(&ca)?], &[])?;
        let issue = |who: &[&str]| -> Result<()> {
            let mut args = vec!["ca", "issue", "--dir", path(&ca)?];
            args.extend_from_slice(who);
            args.extend_from_slice(&["--server-name", "127.0.0.1", "--out", path(&issued)?]);
            run_lading(&args, &[]).map(|_| ())
        };
        issue(&["--registry"])?;
        for party in parties {
            issue(&["--party", party])?;
        }
        // The registry's public key, as replicas are given it.
        let jwk: lading_domain::jws::Jwk = serde_json::from_str(&std::fs::read_to_string(
            fixtures_dir().join("keys/registry.jwk"),
        )?)?;
        std::fs::write(pki.registry_key(), serde_json::to_vec(&jwk.to_public())?)?;
        Ok(pki)
    }

    /// The registry's TLS material: the certificate this CA issued it, and its key.
    pub fn registry_tls(&self) -> Result<Tls> {
        Tls::from_pem(
            &std::fs::read_to_string(self.cert("registry"))?,
            &std::fs::read_to_string(self.key("registry"))?,
        )
    }

    /// A registry serving this CA's registry certificate and trusting its client certificates
    /// (`options.client_ca` is set here), on a throwaway database; blocks while it starts.
    pub fn registry_with(&self, options: ServerOptions) -> Result<(TestDb, Server)> {
        let tls = self.registry_tls()?;
        let options = ServerOptions {
            client_ca: Some(self.ca_pem()),
            ..options
        };
        let db = TestDb::new()?;
        let server = Server::start(&db, &tls, options)?;
        Ok((db, server))
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }
    pub fn ca_pem(&self) -> PathBuf {
        self.ca_dir().join("ca.crt.pem")
    }
    pub fn issued(&self) -> PathBuf {
        self.dir.path().join("issued")
    }
    pub fn cert(&self, who: &str) -> PathBuf {
        self.issued().join(format!("{who}.crt.pem"))
    }
    pub fn key(&self, who: &str) -> PathBuf {
        self.issued().join(format!("{who}.key.pem"))
    }
    /// The folder everything of this consortium is kept in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The registry's public JWK (the fixtures' TEST registry key).
    pub fn registry_key(&self) -> PathBuf {
        self.dir.path().join("registry.pub.jwk")
    }

    /// An HTTPS client trusting the consortium CA, presenting `who`'s certificate (a party
    /// id, or `registry`), or none.
    pub fn client(&self, who: Option<&str>) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
                self.ca_pem(),
            )?)?);
        if let Some(who) = who {
            let mut pem = std::fs::read(self.cert(who))?;
            pem.extend(std::fs::read(self.key(who))?);
            builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
        }
        Ok(builder.build()?)
    }

    /// An HTTPS client of the registry presenting no certificate (submissions need none).
    pub fn registry_client(&self) -> Result<reqwest::Client> {
        self.client(None)
    }

    /// A registry on a new database, serving with its consortium certificate and reconciling
    /// no one; blocks while it starts (call it off the async workers).
    pub fn plain_registry(&self) -> Result<(TestDb, Server)> {
        self.registry_with(ServerOptions::default())
    }

    /// A registry on a new database, serving with its consortium certificate, reconciling the
    /// replicas given (party, port) on demand and every `interval_ms` (0: on demand only), with
    /// more settings (`LADING_...` variables) in `extra`.
    pub async fn registry(
        &self,
        replicas: &[(&str, u16)],
        interval_ms: u64,
        extra: &[(&str, &str)],
    ) -> Result<(TestDb, Server, Tls)> {
        let tls = self.registry_tls()?;
        let targets: Vec<String> = replicas
            .iter()
            .map(|(party, port)| format!("{party}={}", replica_url(*port)))
            .collect();
        let mut env: Vec<(String, String)> = vec![
            (
                "LADING_RECONCILE_CERT".into(),
                path(&self.cert("registry"))?.into(),
            ),
            (
                "LADING_RECONCILE_KEY".into(),
                path(&self.key("registry"))?.into(),
            ),
            ("LADING_RECONCILE_REPLICAS".into(), targets.join(",")),
            (
                "LADING_RECONCILE_INTERVAL_MS".into(),
                interval_ms.to_string(),
            ),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let options = ServerOptions {
            client_ca: Some(self.ca_pem()),
            env,
            ..ServerOptions::default()
        };
        tokio::task::spawn_blocking(move || -> Result<_> {
            let db = TestDb::new()?;
            let server = Server::start(&db, &tls, options)?;
            Ok((db, server, tls))
        })
        .await?
    }

    /// `party`'s replica of the registry at `registry`, serving on `port`, comparing
    /// checkpoints with the replicas at `peers` (URLs), with more settings in `extra`.
    pub async fn replica(
        &self,
        party: &str,
        registry: &str,
        port: u16,
        peers: &[String],
        extra: &[(&str, &str)],
    ) -> Result<(TestDb, ReplicaProcess)> {
        let mut env = self.replica_env(party, registry, port, peers, extra)?;
        tokio::task::spawn_blocking(move || -> Result<_> {
            let db = TestDb::new()?;
            env.extend(db.env());
            let replica = ReplicaProcess::start(env)?;
            Ok((db, replica))
        })
        .await?
    }

    /// The settings of [`Self::replica`] (without its database's).
    pub fn replica_env(
        &self,
        party: &str,
        registry: &str,
        port: u16,
        peers: &[String],
        extra: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>> {
        let mut env: Vec<(String, String)> = vec![
            ("LADING_REPLICA_REGISTRY".into(), registry.into()),
            ("LADING_REPLICA_CA".into(), path(&self.ca_pem())?.into()),
            (
                "LADING_REPLICA_CERT".into(),
                path(&self.cert(party))?.into(),
            ),
            ("LADING_REPLICA_KEY".into(), path(&self.key(party))?.into()),
            (
                "LADING_REPLICA_PARTIES".into(),
                path(&fixtures_dir().join("parties.json"))?.into(),
            ),
            (
                "LADING_REPLICA_REGISTRY_KEY".into(),
                path(&self.registry_key())?.into(),
            ),
            ("LADING_REPLICA_POLL_INTERVAL_MS".into(), "100".into()),
            ("LADING_REPLICA_PEER_INTERVAL_MS".into(), "200".into()),
            ("LADING_REPLICA_PAGE_SIZE".into(), "50".into()),
            ("LADING_REPLICA_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("LADING_REPLICA_PEERS".into(), peers.join(",")),
            ("LADING_WORKERS".into(), "1".into()),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Ok(env)
    }
}

/// `POST` of one compact JWS (`application/jose`): the status and the JSON answer.
pub async fn post_jose(
    client: &reqwest::Client,
    url: &str,
    jws: &str,
) -> Result<(StatusCode, Value)> {
    let response = client
        .post(url)
        .header("content-type", "application/jose")
        .body(jws.to_owned())
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Polls `probe` every 100 ms until it returns `Some` (120 s deadline: the machine is shared).
pub async fn wait_until<T, F, Fut>(what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(found)) = probe().await {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the replica at `port` holds `size` entries and a verified checkpoint of it;
/// its `GET /v1/status`.
pub async fn caught_up(client: &reqwest::Client, port: u16, size: u64) -> Result<Value> {
    let url = format!("{}/v1/status", replica_url(port));
    wait_until(&format!("the replica to hold {size} entries"), || async {
        let (status, body) = get(client, &url).await?;
        Ok(
            (status == StatusCode::OK
                && body["size"] == size
                && body["checkpoint"]["size"] == size)
                .then_some(body),
        )
    })
    .await
}
