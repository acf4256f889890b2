//! One integration-test binary (each extra binary would re-link libpcap) with a module per
//! area.

mod captures;
mod conformance;
mod reassembly;

mod support;
