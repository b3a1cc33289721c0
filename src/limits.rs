//! The bounds every request passes through before a handler sees it: how long a client may
//! take to send it, how large its body may be, how long it may run, and how many may run at
//! once. Each refusal is a TMF `Error`; none of them depends on the protocol or the framing.

use crate::config::Config;
use crate::error::tmf_error;
use poem::http::{header, HeaderValue, StatusCode};
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, IntoResponse};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;

/// The limits of one server, from its settings.
#[derive(Clone)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    /// The body of an import, which is streamed to disk rather than read here.
    pub max_import_bytes: usize,
    pub timeout: Duration,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
}

impl RequestLimits {
    pub fn new(config: &Config) -> Self {
        let max_in_flight = config.max_requests_in_flight.max(1);
        RequestLimits {
            max_body_bytes: config.max_body_bytes,
            max_import_bytes: usize::try_from(config.max_import_bytes).unwrap_or(usize::MAX),
            timeout: Duration::from_millis(config.request_timeout_ms.max(1)),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        }
    }
}

/// Runs a request within the limits: refused with 503 and `Retry-After` when as many are
/// already running as allowed, its body read and bounded (`read_body`), and answered 503 when
/// it runs past the time limit (the work is dropped: a transaction not yet committed is rolled
/// back; a write already handed to the SQLite writer may still commit, as the message says).
pub async fn within_limits<E: Endpoint>(
    endpoint: Arc<E>,
    request: poem::Request,
    limits: RequestLimits,
) -> poem::Result<poem::Response> {
    let Ok(_permit) = limits.in_flight.try_acquire() else {
        return Ok(unavailable(&format!(
            "the server is answering {} requests already; try again shortly",
            limits.max_in_flight
        )));
    };
    let work = async {
        let request = if is_import(&request) {
            read_body(request, limits.max_import_bytes, Reading::LeftToHandler).await?
        } else {
            read_body(request, limits.max_body_bytes, Reading::Whole).await?
        };
        // `call`, not `get_response`: errors must reach the TMF error mapping as errors.
        endpoint
            .call(request)
            .await
            .map(IntoResponse::into_response)
    };
    match tokio::time::timeout(limits.timeout, work).await {
        Ok(answer) => answer,
        Err(_) => Ok(unavailable(&format!(
            "the request did not complete within {} ms; a write it made may still have been applied",
            limits.timeout.as_millis()
        ))),
    }
}

fn unavailable(message: &str) -> poem::Response {
    let mut response = tmf_error(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// An import's body is the one body not read here: it may be far larger than any other, and
/// its handler streams it to disk, counting its bytes against its own bound.
fn is_import(request: &poem::Request) -> bool {
    request.method() == poem::http::Method::POST
        && request
            .uri()
            .path()
            .strip_prefix(crate::handlers::BASE_PATH)
            .is_some_and(|p| p == "/importJob")
}

#[derive(PartialEq)]
enum Reading {
    Whole,
    /// Only a declared length is checked; the handler reads the body within `limit`.
    LeftToHandler,
}

/// Reads the body, refusing it with 413 past `limit` bytes before anything parses it. What
/// counts is the bytes read, whatever the framing (Content-Length, chunked, HTTP/2 frames,
/// which may carry no length at all): a declared length over the limit is refused before
/// reading; any other body is read here, up to the limit, and handed on whole.
async fn read_body(
    mut request: poem::Request,
    limit: usize,
    reading: Reading,
) -> poem::Result<poem::Request> {
    let too_large = || {
        poem::Error::from_string(
            format!("the request body is larger than {limit} bytes"),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    };
    // PostgreSQL cannot compare text holding NUL: such an id can name nothing.
    let path = request.uri().path().as_bytes();
    if path.windows(3).any(|w| w.eq_ignore_ascii_case(b"%00")) {
        return Err(poem::Error::from_string(
            "the path may not contain the NUL character",
            StatusCode::BAD_REQUEST,
        ));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    if declared != Some(0) && reading == Reading::Whole {
        let body = request
            .take_body()
            .into_bytes_limit(limit)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                other => poem::Error::from_string(
                    format!("the request body could not be read: {other}"),
                    StatusCode::BAD_REQUEST,
                ),
            })?;
        request.set_body(body);
    }
    Ok(request)
}

/// Accepts connections that must deliver each request within `limit` of its first byte: a
/// client that sends its headers (or body) a byte at a time is cut off, however steadily it
/// sends. (An idle connection is closed by the server's idle timeout instead.)
pub struct ReadDeadlineAcceptor<A> {
    pub inner: A,
    pub limit: Duration,
}

impl<A: Acceptor> Acceptor for ReadDeadlineAcceptor<A> {
    type Io = ReadDeadline<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        let io = ReadDeadline {
            io,
            limit: self.limit,
            reading_since: None,
        };
        Ok((io, local, remote, scheme))
    }
}

/// A connection whose reads fail once a request has been arriving for longer than `limit`
/// without the server writing anything back: reading starts the clock, the answer stops it.
pub struct ReadDeadline<Io> {
    io: Io,
    limit: Duration,
    reading_since: Option<Instant>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for ReadDeadline<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this
            .reading_since
            .is_some_and(|since| since.elapsed() > this.limit)
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request took too long to arrive",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.reading_since.get_or_insert_with(Instant::now);
        }
        read
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for ReadDeadline<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, bytes);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.reading_since = None;
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bytes);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.reading_since = None;
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
