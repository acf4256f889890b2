//! One integration-test binary (each extra binary would re-link libpcap) with a module per
//! area.

mod conformance;

mod support;
mod captures;
