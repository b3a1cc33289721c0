//! An import's body, written to a file as it arrives: the request ends once it is all on
//! disk, and the job reads it from there at its own pace (and again after a restart).

use futures_util::StreamExt;
use poem::http::StatusCode;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// The file of job `id`'s body in `dir`; complete once renamed to it.
pub fn path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("tmf635-import-{id}.body"))
}

/// Writes `body` to the spool file of job `id`, refusing it with 413 past `max_bytes`. A body
/// that does not arrive whole leaves no file behind.
pub async fn receive(
    body: poem::Body,
    dir: &Path,
    id: &str,
    max_bytes: u64,
) -> poem::Result<PathBuf> {
    let partial = dir.join(format!("tmf635-import-{id}.part"));
    let written = write_bounded(body, &partial, max_bytes).await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    let complete = path(dir, id);
    tokio::fs::rename(&partial, &complete)
        .await
        .map_err(server_error)?;
    Ok(complete)
}

async fn write_bounded(body: poem::Body, file: &Path, max_bytes: u64) -> poem::Result<()> {
    let mut out = tokio::fs::File::create(file).await.map_err(server_error)?;
    let mut stream = body.into_bytes_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            poem::Error::from_string(
                format!("the request body could not be read: {e}"),
                StatusCode::BAD_REQUEST,
            )
        })?;
        total = total.saturating_add(chunk.len() as u64);
        if total > max_bytes {
            return Err(poem::Error::from_string(
                format!("the import body is larger than {max_bytes} bytes"),
                StatusCode::PAYLOAD_TOO_LARGE,
            ));
        }
        out.write_all(&chunk).await.map_err(server_error)?;
    }
    out.sync_all().await.map_err(server_error)?;
    Ok(())
}

fn server_error(e: std::io::Error) -> poem::Error {
    tracing::error!(error = %e, "spooling an import body");
    poem::Error::from_string(
        "the server could not keep the import body",
        StatusCode::INTERNAL_SERVER_ERROR,
    )
}
