//! `tmf635 export --url SERVER [--filter ...] [-o FILE]`: records an export job and downloads
//! its result, streamed, into the file (or standard output).

use super::progress::Progress;
use super::{checked, ExportArgs, Failure};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::process::ExitCode;
use tokio::io::AsyncWriteExt;

fn content_type(args: &ExportArgs) -> Result<&'static str, Failure> {
    let named = args.format.clone().or_else(|| {
        args.output
            .as_ref()
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
    });
    match named.as_deref() {
        None | Some("ndjson" | "jsonl") => Ok("application/x-ndjson"),
        Some("csv") => Ok("text/csv"),
        Some(other) => Err(Failure(format!(
            "cannot export as {other:?}: say --format ndjson or csv"
        ))),
    }
}

pub async fn run(args: ExportArgs) -> Result<ExitCode, Failure> {
    let content_type = content_type(&args)?;
    let mut query: Vec<String> = args.filter.clone();
    if let Some(fields) = &args.fields {
        query.push(format!("fields={fields}"));
    }
    let client = reqwest::Client::new();
    let base = args.server.base();
    let job: Value = checked(
        args.server
            .request(&client, Method::POST, &format!("{base}/exportJob"))
            .json(&json!({"query": query.join("&"), "contentType": content_type}))
            .send()
            .await?,
    )
    .await?
    .json()
    .await?;
    let url = job["url"].as_str().unwrap_or_default().to_string();
    let response = checked(
        args.server
            .request(&client, Method::GET, &url)
            .send()
            .await?,
    )
    .await?;
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match &args.output {
        Some(path) => Box::new(
            tokio::fs::File::create(path)
                .await
                .map_err(|e| Failure(format!("{}: {e}", path.display())))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    let mut progress = Progress::new("rows", None);
    let mut lines: u64 = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        out.write_all(&chunk).await?;
        progress.set(lines, "");
    }
    out.flush().await?;
    progress.finish();
    // A CSV's first line is its header.
    let rows = if content_type == "text/csv" {
        lines.saturating_sub(1)
    } else {
        lines
    };
    eprintln!(
        "export {}: {rows} usages written to {}",
        job["id"].as_str().unwrap_or_default(),
        args.output
            .as_ref()
            .map_or("standard output".to_string(), |p| p.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}
