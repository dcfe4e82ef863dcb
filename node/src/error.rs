//! One error-code type for everything a client can see, mapped once to gRPC
//! codes and HTTP statuses (OTLP receivers, the HTTP API and the cluster
//! service use the same). Nothing else in the node picks a status code.

/// What went wrong, from the client's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request itself is malformed (bad protobuf/JSON, bad ID). Not retryable.
    BadRequest,
    /// The body's content type or content encoding is not one this server
    /// reads. Not retryable.
    UnsupportedMediaType,
    /// The request is larger than the size limit. Not retryable.
    TooLarge,
    /// No usable credentials (a missing or unknown token). Not retryable.
    Unauthenticated,
    /// Credentials without the right (a token without the scope).
    PermissionDenied,
    /// Nothing by that name.
    NotFound,
    /// This node takes no such request now (it is off the ring); nothing of
    /// it was taken, so the sender may send it to another node.
    WrongNode,
    /// The request (or its body) did not arrive or complete in time.
    Timeout,
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
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::WrongNode => StatusCode::MISDIRECTED_REQUEST,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::BadRequest | Self::UnsupportedMediaType => tonic::Code::InvalidArgument,
            // As tonic answers a message over its limit.
            Self::TooLarge => tonic::Code::OutOfRange,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::NotFound => tonic::Code::NotFound,
            Self::WrongNode => tonic::Code::FailedPrecondition,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// A gRPC status of this code.
    pub fn grpc_status(self, message: impl Into<String>) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), message)
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
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooLarge => "too_large",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::WrongNode => "wrong_node",
            Self::Timeout => "timeout",
            Self::ResourceExhausted => "resource_exhausted",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}
