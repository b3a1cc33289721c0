//! `tmf635 import FILE --url SERVER`: sends the file as a streamed body, then follows the job
//! to its end and prints a summary.

use super::progress::Progress;
use super::{checked, Failure, ImportArgs};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn content_type(args: &ImportArgs) -> Result<&'static str, Failure> {
    let named = args.format.clone().or_else(|| {
        args.file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
    });
    match named.as_deref() {
        Some("ndjson" | "jsonl") => Ok("application/x-ndjson"),
        Some("json") => Ok("application/json"),
        Some("csv") => Ok("text/csv"),
        other => Err(Failure(format!(
            "cannot tell the file's format from {other:?}: say --format ndjson, json or csv"
        ))),
    }
}

pub async fn run(args: ImportArgs) -> Result<ExitCode, Failure> {
    let content_type = content_type(&args)?;
    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(|e| Failure(format!("{}: {e}", args.file.display())))?;
    let size = file.metadata().await?.len();
    let client = reqwest::Client::new();
    let base = args.server.base();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let body = tokio_util_free_stream(file).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        chunk
    });
    let upload = args
        .server
        .request(&client, Method::POST, &format!("{base}/importJob"))
        .header("content-type", content_type)
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let mut progress = Progress::new("bytes sent", Some(size));
    tokio::pin!(upload);
    let response = loop {
        tokio::select! {
            response = &mut upload => break response?,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                progress.set(sent.load(Ordering::Relaxed), "");
            }
        }
    };
    progress.finish();
    let job: Value = checked(response).await?.json().await?;
    let href = job["href"].as_str().unwrap_or_default().to_string();
    let mut progress = Progress::new("rows read", None);
    let job = loop {
        let job: Value = checked(
            args.server
                .request(&client, Method::GET, &href)
                .send()
                .await?,
        )
        .await?
        .json()
        .await?;
        let status = job["status"].as_str().unwrap_or_default();
        if status == "succeeded" || status == "failed" {
            break job;
        }
        progress.set(
            job["rowsRead"].as_u64().unwrap_or(0),
            &format!(
                "created {}, skipped {}, rejected {}",
                job["rowsCreated"], job["rowsSkipped"], job["rowsRejected"]
            ),
        );
        tokio::time::sleep(Duration::from_millis(args.poll_ms.max(10))).await;
    };
    progress.finish();
    Ok(summary(&job))
}

/// Prints what the job did; answers the exit status it calls for.
fn summary(job: &Value) -> ExitCode {
    let status = job["status"].as_str().unwrap_or_default();
    println!(
        "import {} {status}: {} rows read, {} created, {} skipped, {} rejected",
        job["id"].as_str().unwrap_or_default(),
        job["rowsRead"],
        job["rowsCreated"],
        job["rowsSkipped"],
        job["rowsRejected"]
    );
    if let Some(message) = job["message"].as_str() {
        println!("  {message}");
    }
    for error in job["errors"].as_array().into_iter().flatten() {
        let attribute = error["attribute"]
            .as_str()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        println!(
            "  line {}{attribute}: {}",
            error["line"],
            error["message"].as_str().unwrap_or_default()
        );
    }
    let rejected = job["rowsRejected"].as_u64().unwrap_or(0);
    if status == "succeeded" && rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The file as a stream of chunks, read as they are sent.
fn tokio_util_free_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut chunk = vec![0; 64 * 1024];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok(chunk), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
