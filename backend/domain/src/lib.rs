//! The pure domain of Lading: what a bill of lading is, how a transfer of it is signed, which
//! transfers the rules allow, and how the ledger is sealed into Merkle checkpoints.
//!
//! Nothing here performs I/O. The store, the registry and the faces build on these types, and a
//! third-party verifier can be written from the rules documented in these modules and the README.

pub mod digest;

pub use digest::Digest;
