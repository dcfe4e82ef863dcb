//! One error-code type for everything a client can see, mapped once to gRPC
//! codes and HTTP statuses (OTLP receivers and the HTTP API use the same).

/// What went wrong, from the client's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request itself is malformed (bad protobuf/JSON, bad ID). Not retryable.
    BadRequest,
    /// No usable credentials (a missing or unknown token). Not retryable.
    Unauthenticated,
    /// Credentials without the right (a token without the scope).
    PermissionDenied,
    /// Nothing by that name.
    NotFound,
    /// Over the memory budget or a queue bound: retry later (OTLP retryable).
    ResourceExhausted,
    /// The node cannot serve right now (starting, shutting down, storage down).
    Unavailable,
    /// A bug or an I/O failure on our side.
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::BadRequest => tonic::Code::InvalidArgument,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::NotFound => tonic::Code::NotFound,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// Whether an OTLP client should retry (OTLP spec: 429/503, and gRPC
    /// RESOURCE_EXHAUSTED/UNAVAILABLE).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::ResourceExhausted | Self::Unavailable)
    }

    /// Stable snake_case name used in JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::ResourceExhausted => "resource_exhausted",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}
