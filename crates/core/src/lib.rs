//! intake's core: what a document is, what the intake policy allows, and what each door may do
//! with the catalog and the blob store. It knows nothing of AWS or Lambda: adapters implement
//! the [`ports`]; functions call the use cases: [`service`] (the HTTP door), [`ingest`]
//! (cataloguing what arrives under `incoming/`), [`mail`] (the e-mail door), [`webhooks`]
//! (fan-out and durable delivery). What clients and subscribers read is in [`contract`].

pub mod announce;
pub mod contract;
pub mod domain;
pub mod error;
pub mod events;
pub mod hold;
pub mod ingest;
pub mod jobs;
pub mod mail;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod multipart;
pub mod policy;
pub mod ports;
pub mod quota;
pub mod retention;
pub mod service;
pub mod sniff;
pub mod sweep;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod webhooks;

pub use domain::*;
pub use error::{Error, Invalid};
pub use ingest::scan;
pub use policy::Policy;
