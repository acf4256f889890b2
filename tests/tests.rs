//! One integration-test binary (each extra binary would re-link libpcap) with a module per
//! area.

mod captures;
mod cli;
mod codings;
mod conformance;
mod dashboard;
mod imperfect;
mod live;
mod reassembly;
mod rules;
mod store;
mod webdriver;

mod support;
