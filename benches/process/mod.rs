//! The servers of the load benchmark (benches/load.rs) as child processes: `tmf635` and
//! `tmf635-baseline` started on a loopback port and a database URL, timed from spawn to their
//! first successful answer, their resident memory read from /proc. Not a bench by itself.

// Each bench uses only part of this module.
#![allow(dead_code)]

use reqwest::Client;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USAGE_PATH: &str = "/tmf-api/usageManagement/v4/usage";
/// How long a server may take to create its schema and answer.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// A server binary of this package.
#[derive(Clone, Copy, PartialEq)]
pub struct Program {
    pub name: &'static str,
    pub binary: &'static str,
}
pub const TMF635: Program = Program {
    name: "tmf635",
    binary: env!("CARGO_BIN_EXE_tmf635"),
};
pub const BASELINE: Program = Program {
    name: "baseline",
    binary: env!("CARGO_BIN_EXE_tmf635-baseline"),
};

/// A server process on a loopback port; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT/tmf-api/usageManagement/v4/usage`
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Spawns `program` on `url` and waits for its first successful answer; returns it with
    /// the time from spawn to that answer.
    pub async fn start(program: Program, url: &str) -> Option<(Server, Duration)> {
        Server::start_with(program, url, &[]).await
    }

    /// `start`, with the settings `env` (`TMF635_*` variables) given to the server.
    pub async fn start_with(
        program: Program,
        url: &str,
        env: &[(&str, &str)],
    ) -> Option<(Server, Duration)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let mut command = Command::new(program.binary);
        command
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if program == TMF635 {
            command.args(["--log", "warn"]);
        }
        // Every other setting at its default, whatever this shell has set.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("TMF635_")) {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let probe_client = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        let base = format!("http://127.0.0.1:{port}{USAGE_PATH}");
        let probe = format!("{base}?relatedParty.id=party-0&limit=1");
        let started = Instant::now();
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                eprintln!("  cannot spawn {}: {e}", program.binary);
                return None;
            }
        };
        let mut server = Server { child, base };
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                eprintln!("  {} exited on start: {status}", program.name);
                return None;
            }
            if let Ok(answer) = probe_client.get(&probe).send().await {
                if answer.status().is_success() {
                    return Some((server, started.elapsed()));
                }
            }
            if started.elapsed() > STARTUP_LIMIT {
                eprintln!("  {} did not answer within {STARTUP_LIMIT:?}", program.name);
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory (VmRSS) in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        rss_of(self.pid())
    }
}

/// Resident memory (VmRSS) of process `pid` in MiB.
pub fn rss_of(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time (user + system) process `pid` has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU time the whole machine has spent busy (everything but idle and iowait), in seconds:
/// with the server's own, it shows what the database and the load generator cost.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: f64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(busy / 100.0)
}
