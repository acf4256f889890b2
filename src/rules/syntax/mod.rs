//! Shared grammar helpers for the Rust checks: small parsers for the field-value syntaxes
//! RFC 9110 and friends define, so that several checks read a value the same way.

pub mod date;
pub mod media_type;
pub mod range;
pub mod token;
