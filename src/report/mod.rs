//! Output formats: one file per format.

pub mod exchange_json;
pub mod exchange_text;
pub mod summary;
