//! Pure encoding and decoding of OTLP bodies: content types, bounded gzip,
//! protobuf and OTLP/JSON requests, responses, and `google.rpc.Status`
//! error bodies. No I/O here, so all of it is tested without sockets.
//!
//! OTLP/JSON decoding uses the `with-serde` impls of `opentelemetry-proto`,
//! which follow the OTLP/JSON rules this receiver must accept: lowerCamelCase
//! keys, hex trace and span IDs, enums as integers, 64-bit integers as
//! strings or numbers, unknown fields ignored (tested in `receive/tests`).

use std::io::Read;
use std::time::Duration;

use prost::Message;

use super::signal::Signal;
use crate::error::ErrorCode;
use crate::ingest::IngestError;

/// Body format of a request, and of its response (OTLP/HTTP answers in the
/// format it was sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Format {
    /// The format of a `Content-Type` value, ignoring parameters and case
    /// (`application/json; charset=utf-8` is JSON); `None` if unsupported.
    pub(crate) fn from_content_type(value: &str) -> Option<Self> {
        let media_type = value.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// `Content-Encoding` of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// The encoding named by a `Content-Encoding` header (absent means
    /// identity); `None` if unsupported.
    pub(crate) fn from_header(value: Option<&str>) -> Option<Self> {
        match value.map(str::trim) {
            None => Some(Self::Identity),
            Some(v) if v.is_empty() || v.eq_ignore_ascii_case("identity") => Some(Self::Identity),
            Some(v) if v.eq_ignore_ascii_case("gzip") => Some(Self::Gzip),
            Some(_) => None,
        }
    }
}

/// Why a request body could not be turned into an export request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Larger than the limit, as sent or once decompressed.
    #[error("request body exceeds the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    /// The connection failed while the body was read.
    #[error("request body could not be read: {0}")]
    Read(String),
    #[error("request body is not valid gzip: {0}")]
    Gzip(std::io::Error),
    #[error("request body is not a valid protobuf {message}: {source}")]
    Protobuf { message: &'static str, source: prost::DecodeError },
    #[error("request body is not valid OTLP/JSON for {message}: {source}")]
    Json { message: &'static str, source: serde_json::Error },
}

impl DecodeError {
    /// What the client is told: over the limit, or a bad request.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// Decompresses (if needed) and decodes a request body, never holding more
/// than `limit_bytes` of decompressed data. CPU-bound: callers run it off the
/// async threads when the body is large.
pub(crate) fn decode_request<G: Signal>(
    body: &[u8],
    format: Format,
    encoding: Encoding,
    limit_bytes: usize,
) -> Result<G::Request, DecodeError> {
    if body.len() > limit_bytes {
        return Err(DecodeError::TooLarge { limit_bytes });
    }
    let inflated;
    let plain = match encoding {
        Encoding::Identity => body,
        Encoding::Gzip => {
            inflated = gunzip_bounded(body, limit_bytes)?;
            &inflated[..]
        }
    };
    match format {
        Format::Protobuf => G::Request::decode(plain).map_err(|source| DecodeError::Protobuf { message: G::REQUEST_NAME, source }),
        Format::Json => serde_json::from_slice(plain).map_err(|source| DecodeError::Json { message: G::REQUEST_NAME, source }),
    }
}

/// Inflates a gzip body (one or more members), failing with `TooLarge` as
/// soon as the output would pass `limit_bytes`: memory use is bounded by the
/// limit whatever the compression ratio (zip bombs).
pub(super) fn gunzip_bounded(compressed: &[u8], limit_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    // Reading one byte past the limit tells "exactly at the limit" from "over".
    let read_max = u64::try_from(limit_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut plain = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit_bytes));
    flate2::read::MultiGzDecoder::new(compressed).take(read_max).read_to_end(&mut plain).map_err(DecodeError::Gzip)?;
    if plain.len() > limit_bytes {
        return Err(DecodeError::TooLarge { limit_bytes });
    }
    Ok(plain)
}

/// Encodes an export response in the request's format. In JSON, a full
/// success is `{}` rather than `{"partialSuccess":null}`.
pub(crate) fn encode_response<G: Signal>(response: &G::Response, format: Format) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        Format::Protobuf => Ok(response.encode_to_vec()),
        Format::Json => {
            let mut value = serde_json::to_value(response)?;
            if let serde_json::Value::Object(fields) = &mut value {
                fields.retain(|_, field| !field.is_null());
            }
            serde_json::to_vec(&value)
        }
    }
}

/// `google.rpc.Status`: the error body of OTLP/HTTP and the details of a
/// gRPC status.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    /// A `google.rpc.Code` (same numbers as gRPC status codes).
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: OTLP clients retry RESOURCE_EXHAUSTED only when
/// it is present.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

pub(crate) const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

impl RpcStatus {
    /// A status, with a `RetryInfo` detail when the client should wait
    /// `retry_delay` before retrying.
    pub(crate) fn new(code: tonic::Code, message: String, retry_delay: Option<Duration>) -> Self {
        let details = retry_delay.map(|delay| {
            let retry_info = RetryInfo {
                retry_delay: Some(ProtoDuration {
                    seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                    // subsec_nanos() < 1e9 always fits in i32.
                    nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
                }),
            };
            ProtoAny { type_url: RETRY_INFO_TYPE_URL.to_owned(), value: retry_info.encode_to_vec() }
        });
        Self { code: code as i32, message, details: details.into_iter().collect() }
    }

    /// The status as an OTLP/HTTP error body. In JSON the `RetryInfo` detail
    /// uses the proto3 JSON form of `Any` and `Duration`.
    pub(crate) fn encode(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Protobuf => self.encode_to_vec(),
            Format::Json => {
                let details: Vec<serde_json::Value> = self
                    .details
                    .iter()
                    .filter(|any| any.type_url == RETRY_INFO_TYPE_URL)
                    .filter_map(|any| RetryInfo::decode(&any.value[..]).ok())
                    .filter_map(|info| info.retry_delay)
                    .map(|d| {
                        let delay = format!("{}.{:09}s", d.seconds, d.nanos);
                        serde_json::json!({"@type": RETRY_INFO_TYPE_URL, "retryDelay": delay})
                    })
                    .collect();
                let body = serde_json::json!({
                    "code": self.code,
                    "message": self.message,
                    "details": details,
                });
                body.to_string().into_bytes()
            }
        }
    }
}

/// The status answering a refused batch. Only `Overloaded` carries a
/// `RetryInfo` (its delay is known, and OTLP clients do not retry
/// RESOURCE_EXHAUSTED without one); UNAVAILABLE is retried with backoff.
pub(crate) fn ingest_error_status(err: &IngestError) -> RpcStatus {
    let retry_delay = match err {
        IngestError::Overloaded { retry_after_ms, .. } => Some(Duration::from_millis(*retry_after_ms)),
        _ => None,
    };
    RpcStatus::new(err.code().grpc_code(), err.to_string(), retry_delay)
}
