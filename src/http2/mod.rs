//! HTTP/2 (RFC 9113) on a reassembled connection: frames, HPACK, streams turned into the
//! same [`Exchange`](crate::http::Exchange) as HTTP/1 (version `HTTP/2`, pseudo-header
//! fields kept in the header list, `stream_id` set), so every rule runs on both.

mod connection;
pub mod frames;
pub mod hpack;
mod streams;
pub mod sync;

pub use connection::Http2Connection;

#[cfg(test)]
mod tests;
