//! wirelint — an HTTP/1.x traffic linter.
//!
//! The pipeline runs one way, each stage one module with a plain-data output:
//!
//! 1. [`capture`] — frames from pcap/pcapng files ([`capture::Frame`]);
//! 2. [`decode`] — link layer → IP → TCP ([`decode::Segment`]);
//! 3. [`reassembly`] — both directions of every TCP connection, in order, as
//!    [`reassembly::Piece`]s of data and gaps;
//! 4. [`http`] — HTTP/1.x messages paired into [`http::Exchange`]s with their anomalies;
//!    [`http2`] turns HTTP/2 streams into the same exchanges; [`session`] decides per
//!    connection which of the two (or both, after `Upgrade: h2c`) reads its bytes;
//!
//! [`pipeline`] runs the stages on threads (connections sharded across workers by flow
//! hash); [`report`] formats the output; [`store`] writes runs, exchanges and findings to
//! SQLite (for live runs also the packets of connections with findings, kept by
//! [`packets`]), which [`dashboard`] serves as web pages; [`cli`] is the command line.

pub mod capture;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod decode;
pub mod har;
pub mod http;
pub mod http2;
pub mod packets;
pub mod pipeline;
pub mod reassembly;
pub mod redact;
pub mod report;
pub mod rules;
pub mod session;
pub mod store;
pub mod synth;
pub mod time;
pub mod tls;
pub mod tls_session;
