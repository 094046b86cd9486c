//! Accounting: tariffs, energy from counters or power, the savings ledger and
//! its store. Pure computation over observations plus a small persistence
//! layer; the same code serves `run` (live) and `replay` (CSV history).
//! Knows nothing of Modbus or MQTT.
pub mod accountant;
pub mod contract;
pub mod counter;
pub mod demand;
pub mod energy;
pub mod integrate;
pub mod ledger;
pub mod lp;
pub mod meter;
pub mod optimum;
pub mod reconcile;
pub mod replay;
pub mod report;
pub mod reprice;
pub mod site;
pub mod statement;
pub mod store;
pub mod tariff;
pub mod transfer;
