//! Shared grammar helpers for the Rust checks: small parsers for the field-value syntaxes
//! RFC 9110 and friends define, so that several checks read a value the same way.

pub mod auth;
pub mod cache_control;
pub mod charset;
pub mod cookie;
pub mod date;
pub mod delta;
pub mod entity_tag;
pub mod media_type;
pub mod negotiation;
pub mod range;
pub mod site;
pub mod stateful;
pub mod tables;
pub mod token;
pub mod weighted;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod fuzz_semantic;
#[cfg(test)]
pub mod testing;
