//! Output formats: one file per format.

pub mod exchange_json;
pub mod exchange_text;
pub mod finding_json;
pub mod findings_text;
pub mod rules_doc;
pub mod sarif;
pub mod summary;
