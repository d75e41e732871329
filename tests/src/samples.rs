//! `fixtures/samples.json`: the sample chains and events every end-to-end test can submit.

use anyhow::{Context, Result};
use serde_json::Value;

use crate::gen::fixtures_dir;

pub use crate::gen::SampleChain;

/// `fixtures/samples.json`.
#[derive(Debug, Clone)]
pub struct Samples {
    pub chains: Vec<SampleChain>,
    pub events: Vec<String>,
}

impl Samples {
    pub fn load() -> Result<Self> {
        let path = fixtures_dir().join("samples.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let strings = |v: &Value| -> Result<Vec<String>> {
            v.as_array()
                .context("not an array")?
                .iter()
                .map(|s| s.as_str().map(str::to_owned).context("not a string"))
                .collect()
        };
        let chains = v["chains"]
            .as_array()
            .context("samples.json has no chains")?
            .iter()
            .map(|c| {
                Ok(SampleChain {
                    reference: c["reference"]
                        .as_str()
                        .context("chain without reference")?
                        .to_owned(),
                    transitions: strings(&c["transitions"])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            chains,
            events: strings(&v["events"])?,
        })
    }

    pub fn chain(&self, reference: &str) -> Result<&SampleChain> {
        self.chains
            .iter()
            .find(|c| c.reference == reference)
            .with_context(|| format!("no sample chain {reference}"))
    }
}
