//! End-to-end tests and the load harness for Lading: real `lading` processes, real
//! PostgreSQL, real TLS.
//!
//! [`harness`] starts registries as child processes against throwaway databases and gives tests
//! an HTTPS client that trusts only the registry's own certificate.

pub mod browser;
pub mod consortium;
pub mod export_ledger;
pub mod failover;
pub mod gen;
pub mod harness;
pub mod load;
pub mod portal;
pub mod receiver;
pub mod samples;
pub mod schemas;
pub mod soak;
