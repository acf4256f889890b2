//! One integration-test binary (each extra binary would re-link libpcap) with a module per
//! area.

mod captures;
mod cli;
mod codings;
mod conformance;
mod dashboard;
mod har;
mod http2;
mod imperfect;
mod live;
mod packet_store;
mod reassembly;
mod rules;
mod store;
mod tls;
mod webdriver;

mod support;
