//! HAR 1.2 (<http://www.softwareishard.com/blog/har-12-spec/>) as serde types, read and
//! written. Reading is tolerant as the files in the wild need: every field has a default
//! (browsers and proxies leave out fields the spec calls required), numbers may come as
//! strings or `null`, `connection` may be a number, and vendor fields (`_initiator`,
//! `_transferSize`, …) are ignored — except our own `_wirelint`.

use serde::{Deserialize, Deserializer, Serialize};

/// The whole file: `{"log": {…}}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Har {
    /// Required: a file without it is not a HAR file.
    #[serde(default)]
    pub log: Option<Log>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Log {
    pub version: String,
    pub creator: Creator,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<Creator>,
    /// Required: a log without entries is not a HAR log.
    #[serde(default = "no_entries")]
    pub entries: Option<Vec<Entry>>,
}

fn unknown_size() -> i64 {
    -1
}

fn no_entries() -> Option<Vec<Entry>> {
    None
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Creator {
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub version: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Entry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pageref: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub started_date_time: String,
    #[serde(deserialize_with = "lenient_f64")]
    pub time: f64,
    pub request: Request,
    pub response: Response,
    pub cache: serde_json::Map<String, serde_json::Value>,
    pub timings: Timings,
    #[serde(
        rename = "serverIPAddress",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub server_ip_address: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// What wirelint knows beyond HAR (written by `exchanges --format har`).
    #[serde(rename = "_wirelint", skip_serializing_if = "Option::is_none")]
    pub wirelint: Option<WirelintFields>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Request {
    #[serde(deserialize_with = "lenient_string")]
    pub method: String,
    #[serde(deserialize_with = "lenient_string")]
    pub url: String,
    #[serde(deserialize_with = "lenient_string")]
    pub http_version: String,
    #[serde(deserialize_with = "lenient_vec")]
    pub cookies: Vec<Cookie>,
    #[serde(deserialize_with = "lenient_vec")]
    pub headers: Vec<NameValue>,
    #[serde(deserialize_with = "lenient_vec")]
    pub query_string: Vec<NameValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_data: Option<PostData>,
    #[serde(default = "unknown_size", deserialize_with = "lenient_size")]
    pub headers_size: i64,
    #[serde(default = "unknown_size", deserialize_with = "lenient_size")]
    pub body_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Response {
    #[serde(deserialize_with = "lenient_i64")]
    pub status: i64,
    #[serde(deserialize_with = "lenient_string")]
    pub status_text: String,
    #[serde(deserialize_with = "lenient_string")]
    pub http_version: String,
    #[serde(deserialize_with = "lenient_vec")]
    pub cookies: Vec<Cookie>,
    #[serde(deserialize_with = "lenient_vec")]
    pub headers: Vec<NameValue>,
    pub content: Content,
    #[serde(rename = "redirectURL", deserialize_with = "lenient_string")]
    pub redirect_url: String,
    #[serde(default = "unknown_size", deserialize_with = "lenient_size")]
    pub headers_size: i64,
    #[serde(default = "unknown_size", deserialize_with = "lenient_size")]
    pub body_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A header or query parameter.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct NameValue {
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub value: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Cookie {
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub value: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PostData {
    #[serde(deserialize_with = "lenient_string")]
    pub mime_type: String,
    #[serde(deserialize_with = "lenient_vec")]
    pub params: Vec<Param>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub text: Option<String>,
    /// Not in HAR 1.2, but written by some tools (and by us, as `_encoding`) for binary
    /// request bodies.
    #[serde(
        rename = "_encoding",
        alias = "encoding",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Param {
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub value: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub file_name: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Content {
    #[serde(default = "unknown_size", deserialize_with = "lenient_size")]
    pub size: i64,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_i64"
    )]
    pub compression: Option<i64>,
    #[serde(deserialize_with = "lenient_string")]
    pub mime_type: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub text: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Milliseconds; -1 when a phase does not apply or is not known.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Timings {
    #[serde(deserialize_with = "lenient_ms")]
    pub blocked: f64,
    #[serde(deserialize_with = "lenient_ms")]
    pub dns: f64,
    #[serde(deserialize_with = "lenient_ms")]
    pub connect: f64,
    #[serde(deserialize_with = "lenient_ms")]
    pub send: f64,
    #[serde(deserialize_with = "lenient_ms")]
    pub wait: f64,
    #[serde(deserialize_with = "lenient_ms")]
    pub receive: f64,
    #[serde(deserialize_with = "lenient_ms")]
    pub ssl: f64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            blocked: -1.0,
            dns: -1.0,
            connect: -1.0,
            send: -1.0,
            wait: -1.0,
            receive: -1.0,
            ssl: -1.0,
        }
    }
}

/// `_wirelint`: the facts of a reassembled exchange that HAR has no field for.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct WirelintFields {
    /// `wire` (parsed from packets) or `har` (read from a HAR file).
    pub source: String,
    /// The capture file the exchange came from.
    pub capture: String,
    /// `ip:port` of both ends (a HAR file has only the server's IP).
    pub client: String,
    pub server: String,
    /// 0-based position on the connection.
    pub index: u32,
    /// First and last frame numbers of each message, as Wireshark counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_frames: Option<[u64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_frames: Option<[u64; 2]>,
    /// Parse and reassembly anomalies (names as in `exchanges --format jsonl`).
    pub anomalies: Vec<String>,
    /// Status codes of the 1xx responses before the final one (HAR has no place for them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interim: Vec<u16>,
}

// ---- tolerant field readers ----

/// A string, or a number/bool written where a string belongs, or `null` (empty).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient_opt_string(d)?.unwrap_or_default())
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, found {}",
                kind(&other)
            )));
        }
    })
}

fn lenient_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => None,
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) if s.trim().is_empty() => None,
        serde_json::Value::String(s) => Some(s.trim().parse::<f64>().map_err(|_| {
            serde::de::Error::custom(format!("expected a number, found the string {s:?}"))
        })?),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a number, found {}",
                kind(&other)
            )));
        }
    })
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(lenient_opt_f64(d)?.unwrap_or(0.0))
}

/// Timings: missing, `null` or not finite is -1 (not known).
fn lenient_ms<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(lenient_opt_f64(d)?
        .filter(|v| v.is_finite())
        .unwrap_or(-1.0))
}

fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(lenient_opt_f64(d)?
        .filter(|v| v.is_finite())
        .map(|v| v as i64))
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(lenient_opt_i64(d)?.unwrap_or(0))
}

/// Sizes: missing or `null` is -1 (not known), as HAR writes it.
fn lenient_size<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(lenient_opt_i64(d)?.unwrap_or(-1))
}

/// An array, or `null` (empty).
fn lenient_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
