//! `tmf635 apikey create|list|revoke`, run against the configured database (`DATABASE_URL`).

use crate::auth::{api_key, scopes};
use crate::config::Config;
use crate::store::Store;
use chrono::SecondsFormat;
use clap::Subcommand;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand, Debug, Clone)]
pub enum ApiKeyCommand {
    /// Issues a key and prints it once (only its hash is stored). Issuing the first key turns
    /// authentication on at the server's next start.
    Create {
        /// A name to recognise the key by in `list`.
        #[arg(long)]
        name: String,
        /// A scope the key carries (repeat, or space/comma-separated): usage.read,
        /// usage.write, usageSpecification.read, usageSpecification.write, hub.manage,
        /// listener.write.
        #[arg(long = "scope", required = true, num_args = 1..)]
        scopes: Vec<String>,
        /// The tenant whose rows the key sees. Issuing a key with a tenant turns tenancy on at
        /// the server's next start (keys without one are then refused).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Lists the keys (never the keys themselves): id, name, scopes, tenant, created, revoked.
    List,
    /// Revokes a key by its id: it is refused from the next request on.
    Revoke { id: String },
}

/// Runs an `apikey` subcommand; exit status 1 on any failure.
pub async fn run(command: &ApiKeyCommand, config: &Config) -> ExitCode {
    match execute(command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tmf635: {e}");
            ExitCode::from(1)
        }
    }
}

async fn execute(command: &ApiKeyCommand, config: &Config) -> Result<(), String> {
    let store = Store::connect(
        &config.database_url,
        1,
        Duration::from_millis(config.statement_timeout_ms),
        config.sqlite_mmap_bytes,
    )
    .await
    .map_err(|e| format!("cannot open the database: {e}"))?;
    match command {
        ApiKeyCommand::Create {
            name,
            scopes,
            tenant,
        } => {
            let scopes = checked_scopes(scopes)?;
            if tenant.as_deref() == Some("") {
                return Err("--tenant must name a tenant".into());
            }
            let key = api_key::generate().map_err(|e| format!("no random bytes: {e}"))?;
            let row = store
                .create_api_key(name.clone(), api_key::hash(&key), scopes, tenant.clone())
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "API key {} ({}) created; it is shown only now:",
                row.id, row.name
            );
            println!("{key}");
        }
        ApiKeyCommand::List => {
            let time =
                |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
            for key in store.api_keys().await.map_err(|e| e.to_string())? {
                let revoked = key.revoked_at.map(time).unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\ttenant {}\tcreated {}\trevoked {}",
                    key.id,
                    key.name,
                    key.scopes,
                    key.tenant.as_deref().unwrap_or("-"),
                    time(key.created_at),
                    revoked
                );
            }
        }
        ApiKeyCommand::Revoke { id } => {
            store.revoke_api_key(id).await.map_err(|e| e.to_string())?;
            eprintln!("API key {id} revoked");
        }
    }
    store.pool().close().await.map_err(|e| e.to_string())
}

/// The scopes given, split and checked against those the operations use, space-separated.
fn checked_scopes(given: &[String]) -> Result<String, String> {
    let mut out = Vec::new();
    for scope in given
        .iter()
        .flat_map(|s| s.split([' ', ',']))
        .filter(|s| !s.is_empty())
    {
        if !scopes::all().contains(scope) {
            let known: Vec<&str> = scopes::all().iter().map(String::as_str).collect();
            return Err(format!(
                "unknown scope {scope:?}; known: {}",
                known.join(" ")
            ));
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out.join(" "))
}
