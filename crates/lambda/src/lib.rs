//! How an intake function starts and runs, shared by all of them: configuration read once from
//! the environment, JSON logs, CloudWatch metrics (EMF), AWS clients built once per execution
//! environment.
//!
//! A function's `main` is: [`telemetry::init`], [`Config::from_env`], [`Clients::new`], build
//! the handler's state, run it.

pub mod config;
pub mod metrics;
pub mod telemetry;

mod clients;

pub use clients::Clients;
pub use config::{Config, ConfigError};
