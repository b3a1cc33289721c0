//! The subcommands of the `tmf635` binary beside serving. `tmf635 import` and `tmf635 export`
//! are clients of a running server; exit status 0 when every row went in (or out), 1 when an
//! import rejected rows or failed, 2 when the server could not be asked (unreachable, an error
//! answer). `tmf635 apikey` works on the configured database.

mod apikey;
mod export;
mod import;
mod progress;

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Imports a file of usages (NDJSON, a JSON array or CSV) into a running server and waits
    /// for the job to end.
    Import(ImportArgs),
    /// Exports the usages a filter selects from a running server, as NDJSON or CSV.
    Export(ExportArgs),
    /// API keys of machine clients.
    #[command(subcommand)]
    Apikey(apikey::ApiKeyCommand),
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The file: `.ndjson`/`.jsonl`, `.json` (an array) or `.csv` (or say which with --format).
    pub file: PathBuf,
    #[command(flatten)]
    pub server: Server,
    /// ndjson, json or csv; default: from the file's extension.
    #[arg(long)]
    pub format: Option<String>,
    /// Time between two looks at the job, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: Server,
    /// A condition in the list grammar, e.g. `status=rated` or `usageDate.gte=2024-05-01`
    /// (repeat for several; they all hold).
    #[arg(long)]
    pub filter: Vec<String>,
    /// Attributes to keep, e.g. `usageDate,status` (id and href always).
    #[arg(long)]
    pub fields: Option<String>,
    /// ndjson or csv; default: from the output file's extension, else ndjson.
    #[arg(long)]
    pub format: Option<String>,
    /// Where to write the usages; default: standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct Server {
    /// The server, e.g. http://localhost:8080 (the API's base path is added).
    #[arg(long)]
    pub url: String,
    /// A bearer token, for a server with authentication.
    #[arg(long, env = "TMF635_TOKEN")]
    pub token: Option<Token>,
}

/// A token, never shown in `Debug`.
#[derive(Clone)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Token, Self::Err> {
        Ok(Token(s.to_string()))
    }
}

impl Server {
    /// The API's base, whether or not `--url` already names it.
    fn base(&self) -> String {
        let url = self.url.trim_end_matches('/');
        if url.ends_with(crate::handlers::BASE_PATH) {
            url.to_string()
        } else {
            format!("{url}{}", crate::handlers::BASE_PATH)
        }
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let request = client.request(method, url);
        match &self.token {
            Some(Token(token)) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// What went wrong talking to the server.
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.to_string())
    }
}

/// Answers an error answer's TMF message, or the response when it is a success.
async fn checked(response: reqwest::Response) -> Result<reqwest::Response, Failure> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let message = body["message"].as_str().unwrap_or("no message");
    Err(Failure(format!("the server answered {status}: {message}")))
}

pub async fn run(command: Command, config: &crate::config::Config) -> ExitCode {
    let outcome = match command {
        Command::Import(args) => import::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Apikey(command) => return apikey::run(&command, config).await,
    };
    match outcome {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
