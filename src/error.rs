//! The one error type of the server and its mapping to the TMF `Error` JSON body. Every 4xx and
//! 5xx leaves through here, including the ones poem and poem-openapi raise themselves (unknown
//! route, wrong method, malformed JSON, wrong types), via [`into_tmf_response`].

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or breaks the schema (body, query or path).
    #[error("{0}")]
    BadRequest(String),
    #[error("no {resource} with id {id}")]
    NotFound { resource: &'static str, id: String },
    /// No credentials, or credentials that do not check out: answered with `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the scope the operation needs.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// A database failure: logged in full, answered as a bare 500.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Database(e) if statement_timed_out(e) || session_lost(e) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told; internal details stay in the log.
    fn public_message(&self) -> String {
        match self {
            Error::Database(e) if statement_timed_out(e) => {
                "a database statement ran past the statement time limit".into()
            }
            Error::Database(e) if session_lost(e) => {
                "the connection to the database was lost; try again".into()
            }
            Error::Database(_) | Error::Internal(_) => {
                "the server could not complete the request".into()
            }
            other => other.to_string(),
        }
    }
}

/// Whether the connection to the database was lost under the request: the database is away,
/// not the request at fault, so 503 (try again) rather than 500.
fn session_lost(e: &sea_orm::DbErr) -> bool {
    crate::store::session_lost(e)
}

/// Whether the statement was stopped at the statement time limit: cancelled by PostgreSQL's
/// `statement_timeout` (SQLSTATE 57014, query_canceled) or interrupted by the SQLite deadline
/// of `store::connection` (result code 9, SQLITE_INTERRUPT).
fn statement_timed_out(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            matches!(e, sea_orm::sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("57014") | Some("9")))
        }
        _ => false,
    }
}

impl poem::error::ResponseError for Error {
    fn status(&self) -> StatusCode {
        Error::status(self)
    }

    fn as_response(&self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = tmf_error(self.status(), &self.public_message());
        if let Error::Unauthorized(_) = self {
            // RFC 6750: which scheme to use; `error` only when credentials were sent.
            response.headers_mut().insert(
                poem::http::header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static(r#"Bearer realm="tmf635""#),
            );
        }
        response
    }
}

/// The TMF `Error` body: `code` is a stable, machine-readable name of the failure, `reason`
/// the HTTP reason phrase, `message` what went wrong and how to fix it, `status` the HTTP code.
pub fn tmf_error(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::NOT_ACCEPTABLE => "NOT_ACCEPTABLE",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::PRECONDITION_FAILED => "PRECONDITION_FAILED",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        s if s.is_server_error() => "INTERNAL_ERROR",
        _ => "ERROR",
    };
    let body = json!({
        "code": code,
        "reason": status.canonical_reason().unwrap_or("Error"),
        "message": message,
        "status": status.as_u16().to_string(),
        "@type": "Error",
    });
    poem::web::Json(body).with_status(status).into_response()
}

/// Turns any error raised while serving a request into a TMF `Error` response.
pub async fn into_tmf_response(err: poem::Error) -> Response {
    if err.is::<Error>() {
        return err.into_response();
    }
    let status = err.status();
    let message = match status {
        StatusCode::NOT_FOUND => "no such resource or path".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this path".to_string(),
        _ => err.to_string(),
    };
    if status.is_server_error() {
        tracing::error!(error = %err, "request failed");
    }
    tmf_error(status, &message)
}
