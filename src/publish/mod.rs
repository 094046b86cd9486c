//! After the spool: the sinks that drain it and acknowledge what the far
//! side confirmed ([`mqtt`], [`influx`]), and the HTTP API and dashboard
//! ([`http`]) that serve the live state; and the monthly settlement
//! statement's documents ([`statement`]). What is produced and made durable
//! before this point lives in `outbox` and `spool`.
pub mod http;
pub mod influx;
pub mod mqtt;
pub mod statement;
