//! The authority's replica as `verify-bundle --against-replica` reads it: its face over mutual
//! TLS, with the authority's consortium certificate, trusting only a server whose certificate
//! names that very authority (its own replica, not another party's).

use std::path::Path;

use anyhow::{Context, Result};
use lading_export::crosscheck::{ReplicaEntriesPage, ReplicaReads, ReplicaRoot};

pub struct HttpReplica {
    http: reqwest::blocking::Client,
    base: String,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

impl HttpReplica {
    pub fn new(url: &str, authority: &str, ca: &Path, cert: &Path, key: &Path) -> Result<Self> {
        let party = authority
            .parse()
            .map_err(|e| anyhow::anyhow!("the bundle's authority {authority:?}: {e}"))?;
        let tls = lading_pki::client_config_for(
            read(ca)?,
            read(cert)?,
            read(key)?,
            lading_pki::ServerIdentity::Party(party),
        )?;
        let http = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(std::sync::Arc::unwrap_or_clone(tls))
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_owned(),
        })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().unwrap_or_default();
            return Err(format!("GET {url}: {status} {body}"));
        }
        response.json().map_err(|e| format!("GET {url}: {e}"))
    }
}

impl ReplicaReads for HttpReplica {
    fn root(&mut self, size: u64) -> Result<ReplicaRoot, String> {
        self.get(&format!("/v1/roots/{size}"))
    }

    fn entries(&mut self, from: u64, limit: u64) -> Result<ReplicaEntriesPage, String> {
        self.get(&format!("/v1/entries?from={from}&limit={limit}"))
    }
}
