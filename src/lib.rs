//! bessmon: monitoring and arbitrage accounting for C&I battery storage.
//!
//! Data flows one way: [`acquire`] (Modbus) → [`account`] → [`outbox`] →
//! [`spool`] (durable) → [`publish`].
//! [`sim`] and [`cli`] sit beside the flow; [`config`] is the one place that
//! reads config files and [`clock`] the one place that reads the time.
pub mod account;
pub mod acquire;
pub mod backoff;
pub mod bundled;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod duration;
pub mod fuzzing;
pub mod log_throttle;
pub mod outbox;
pub mod publish;
pub mod role;
pub mod shutdown;
pub mod sim;
pub mod spool;
pub mod timefmt;
pub mod tls;
pub mod validation;
