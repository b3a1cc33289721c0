//! The load benchmark: starts the `tmf635` binary as its own process on a fresh
//! database, drives it over loopback HTTP with N concurrent keep-alive connections for a fixed
//! time per operation, then does the same with `tmf635-baseline` (benches/baseline/main.rs, a
//! minimal poem + sqlx server with no validation, no spec, no events). Operations, in order:
//!   1. `POST /usage` with a ~1 KB document (the server assigns id and href), 201;
//!   2. `GET /usage/{id}`, random ids among those created in 1;
//!   3. `GET /usage?relatedParty.id=party-N&limit=100`, N random in 0..20;
//!   4. `PATCH /usage/{id}` (merge patch) of `status`, toggled so the document changes, 200.
//!
//! Also per server: start time (spawn to first successful answer, polled every 2 ms) and idle
//! VmRSS after start and after the load; per operation, CPU time per answered request of the
//! server process and of the whole machine (database and load generator included), read from
//! /proc over the measured time. The report (stdout) is markdown for BENCHMARKS.md.
//!
//! `cargo bench --bench load`; `BENCH_BACKENDS=sqlite,postgres` (PostgreSQL is skipped when
//! unreachable), `BENCH_SECONDS=10` per operation (after a 1 s warm-up), `BENCH_CONNECTIONS=32`,
//! `BENCH_ROUNDS=1`: rounds per program, alternating tmf635 and the baseline; each operation's
//! figures are those of its median round, its ratio the median of the rounds' ratios (runs
//! here swing by 15% from one minute to the next).

#![forbid(unsafe_code)]

mod common;
mod process;

use common::{env_number, percentile, Lcg, PARTIES};
use process::{Program, Server, BASELINE, TMF635};
use reqwest::{Client, RequestBuilder};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARM_UP: Duration = Duration::from_secs(1);
/// Two statuses the PATCH phase alternates between (both valid TMF635 usage statuses).
const TOGGLE: [&str; 2] = ["rated", "rerated"];

#[derive(Clone, Copy, PartialEq)]
enum Operation {
    Create,
    Retrieve,
    List,
    Patch,
}

const OPERATIONS: [(Operation, &str); 4] = [
    (Operation::Create, "POST /usage (1 KB)"),
    (Operation::Retrieve, "GET /usage/{id}"),
    (Operation::List, "GET /usage?relatedParty.id&limit=100"),
    (Operation::Patch, "PATCH /usage/{id} status"),
];

/// What one operation measured: latencies (ms) of the successful requests after the warm-up.
#[derive(Default)]
struct Outcome {
    latencies: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
    /// Ids answered by `POST` (warm-up included), for the later operations.
    created: Vec<String>,
    /// CPU seconds over the measured time: the server's own, and the whole machine's.
    server_cpu: Option<f64>,
    machine_cpu: Option<f64>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

struct Load {
    client: Client,
    base: String,
    bodies: Arc<Vec<String>>,
    connections: usize,
    seconds: u64,
    server_pid: u32,
}

impl Load {
    /// One request of `operation` by task `task`; `toggles` remembers the PATCHed status of
    /// each of the task's ids.
    fn request(
        &self,
        operation: Operation,
        ids: &[String],
        rng: &mut Lcg,
        toggles: &mut HashMap<usize, usize>,
    ) -> RequestBuilder {
        let (client, base) = (&self.client, &self.base);
        match operation {
            Operation::Create => client
                .post(base)
                .header("content-type", "application/json")
                .body(self.bodies[rng.below(self.bodies.len())].clone()),
            Operation::Retrieve => client.get(format!("{base}/{}", ids[rng.below(ids.len())])),
            Operation::List => client.get(format!(
                "{base}?relatedParty.id=party-{}&limit=100",
                rng.below(PARTIES)
            )),
            Operation::Patch => {
                let index = rng.below(ids.len());
                let count = toggles.entry(index).or_default();
                *count += 1;
                client
                    .patch(format!("{base}/{}", ids[index]))
                    .header("content-type", "application/merge-patch+json")
                    .body(format!(r#"{{"status":"{}"}}"#, TOGGLE[*count % 2]))
            }
        }
    }

    /// Runs `operation` on every connection until the deadline.
    async fn run(self: &Arc<Self>, operation: Operation, ids: Arc<Vec<String>>) -> Outcome {
        let measure_from = Instant::now() + WARM_UP;
        let deadline = measure_from + Duration::from_secs(self.seconds);
        let tasks: Vec<_> = (0..self.connections)
            .map(|task| {
                let (load, ids) = (self.clone(), ids.clone());
                tokio::spawn(load.connection(operation, ids, task, measure_from, deadline))
            })
            .collect();
        let sample = || {
            (
                process::cpu_seconds(self.server_pid),
                process::machine_busy_seconds(),
            )
        };
        tokio::time::sleep_until(measure_from.into()).await;
        let before = sample();
        tokio::time::sleep_until(deadline.into()).await;
        let after = sample();
        let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let mut total = Outcome {
            server_cpu: delta(before.0, after.0),
            machine_cpu: delta(before.1, after.1),
            ..Outcome::default()
        };
        for task in tasks {
            let outcome = task.await.unwrap_or_else(|e| Outcome {
                errors: 1,
                first_error: Some(format!("load task failed: {e}")),
                ..Outcome::default()
            });
            total.latencies.extend(outcome.latencies);
            total.errors += outcome.errors;
            total.first_error = total.first_error.or(outcome.first_error);
            total.created.extend(outcome.created);
        }
        total.latencies.sort_by(|a, b| a.total_cmp(b));
        total
    }

    /// One connection's loop: send, read the answer, record, until `deadline`.
    async fn connection(
        self: Arc<Self>,
        operation: Operation,
        all_ids: Arc<Vec<String>>,
        task: usize,
        measure_from: Instant,
        deadline: Instant,
    ) -> Outcome {
        // PATCH: each task its own ids, so its toggle sees every change of them.
        let ids: Vec<String> = match operation {
            Operation::Patch if all_ids.len() >= self.connections => {
                let step = self.connections;
                all_ids.iter().skip(task).step_by(step).cloned().collect()
            }
            _ => all_ids.to_vec(),
        };
        let (mut rng, mut toggles) = (Lcg(1000 + task as u64), HashMap::new());
        let mut outcome = Outcome::default();
        loop {
            let sent = Instant::now();
            if sent >= deadline {
                return outcome;
            }
            let request = self.request(operation, &ids, &mut rng, &mut toggles);
            let answer = exchange(request, operation == Operation::Create).await;
            let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
            match answer {
                Ok(created) => {
                    outcome.created.extend(created);
                    if sent >= measure_from {
                        outcome.latencies.push(elapsed);
                    }
                }
                Err(error) => {
                    if sent >= measure_from {
                        outcome.errors += 1;
                        outcome.first_error.get_or_insert(error);
                    }
                    // A dead server answers at once: do not spin.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}

/// Sends `request` and reads the whole answer; on a success, the `id` in it if `want_id`; else
/// what failed.
async fn exchange(request: RequestBuilder, want_id: bool) -> Result<Option<String>, String> {
    let response = request.send().await.map_err(|e| format!("sending: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading: {e}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!("{status}: {text}"));
    }
    Ok(want_id
        .then(|| serde_json::from_slice::<Created>(&body).ok())
        .flatten()
        .map(|c| c.id))
}

/// req/s, p50 ms, p99 ms, errors.
type Figures = (f64, f64, f64, usize);

/// Figures of one program on one backend.
struct Measured {
    start: Duration,
    rss_started: Option<f64>,
    rss_after_load: Option<f64>,
    /// Usages the POST phase created: the table the later operations read and change.
    usages: usize,
    /// Per operation: req/s, p50, p99, errors; `None` when it could not run (no ids).
    operations: Vec<Option<Figures>>,
    /// Per operation: CPU microseconds per answered request, the server's and the machine's.
    cpu: Vec<Option<(f64, f64)>>,
}

async fn measure(
    program: Program,
    backend: &str,
    connections: usize,
    seconds: u64,
) -> Option<Measured> {
    let name = format!("tmf635_load_{}", program.name);
    let Some(url) = common::fresh_database(backend, &name).await else {
        eprintln!("SKIPPED: {backend} not reachable");
        return None;
    };
    let (server, start) = Server::start(program, &url).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_started = server.rss_mib();
    eprintln!(
        "{backend} {}: answered {:.0} ms after spawn",
        program.name,
        start.as_secs_f64() * 1000.0
    );
    let mut rng = Lcg(42);
    let bodies: Vec<String> = (0..1000).map(|i| common::post_body(i, &mut rng)).collect();
    let size = bodies.iter().map(String::len).sum::<usize>() / bodies.len();
    eprintln!("  POST bodies: {size} bytes on average");
    let client = Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(60))
        .build()
        .ok()?;
    let load = Arc::new(Load {
        client,
        base: server.base.clone(),
        bodies: Arc::new(bodies),
        connections,
        seconds,
        server_pid: server.pid(),
    });
    let mut ids = Arc::new(Vec::new());
    let (mut operations, mut cpu) = (Vec::new(), Vec::new());
    for (operation, label) in OPERATIONS {
        if operation != Operation::Create && ids.is_empty() {
            eprintln!("  {label}: skipped, nothing was created");
            operations.push(None);
            cpu.push(None);
            continue;
        }
        let outcome = load.run(operation, ids.clone()).await;
        let rate = outcome.latencies.len() as f64 / seconds as f64;
        let (p50, p99) = (
            percentile(&outcome.latencies, 0.5),
            percentile(&outcome.latencies, 0.99),
        );
        eprintln!(
            "  {label}: {rate:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {} errors{}",
            outcome.errors,
            outcome
                .first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        if operation == Operation::Create {
            ids = Arc::new(outcome.created);
        }
        operations.push(Some((rate, p50, p99, outcome.errors)));
        let answered = outcome.latencies.len().max(1) as f64;
        cpu.push(
            outcome
                .server_cpu
                .zip(outcome.machine_cpu)
                .map(|(server, machine)| (server * 1e6 / answered, machine * 1e6 / answered)),
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Some(Measured {
        start,
        rss_started,
        rss_after_load: server.rss_mib(),
        usages: ids.len(),
        operations,
        cpu,
    })
}

/// The figures of operation `i` in the round with the median throughput, and that round's
/// CPU per request.
fn median(rounds: &[Measured], i: usize) -> (Option<Figures>, Option<(f64, f64)>) {
    let mut measured: Vec<_> = rounds
        .iter()
        .filter_map(|r| r.operations[i].map(|op| (op, r.cpu[i])))
        .collect();
    measured.sort_by(|a, b| a.0 .0.total_cmp(&b.0 .0));
    match measured.get(measured.len() / 2) {
        Some(&(op, cpu)) => (Some(op), cpu),
        None => (None, None),
    }
}

/// Operation `i`'s throughput ratio (tmf635 / baseline) of each round, ascending. A round's
/// two runs follow each other, so a slow spell of the machine weighs on both sides of its
/// ratio; comparing each program's median round instead can pair a slow run of one with a
/// fast run of the other.
fn round_ratios(ours: &[Measured], theirs: &[Measured], i: usize) -> Vec<f64> {
    let mut ratios: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .filter_map(|(o, t)| match (o.operations[i], t.operations[i]) {
            (Some(o), Some(t)) if t.0 > 0.0 => Some(o.0 / t.0),
            _ => None,
        })
        .collect();
    ratios.sort_by(|a, b| a.total_cmp(b));
    ratios
}

fn cells(figures: Option<Figures>) -> String {
    match figures {
        Some((0.0, _, _, errors)) => format!("0 | - | {errors}"),
        Some((rate, p50, p99, errors)) => format!("{rate:.0} | {p50:.2} / {p99:.2} | {errors}"),
        None => "- | - | -".into(),
    }
}

fn mib(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "-".into())
}

#[tokio::main]
async fn main() {
    let connections = env_number("BENCH_CONNECTIONS", 32).max(1);
    let seconds = env_number("BENCH_SECONDS", 10).max(1) as u64;
    let rounds = env_number("BENCH_ROUNDS", 1).max(1);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut load_table = vec![
        "| backend | operation | tmf635 req/s | p50 / p99 ms | errors | baseline req/s | p50 / p99 ms | errors | ratio (tmf635/baseline req/s): median of rounds (each round) |".to_string(),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut cpu_table = vec![
        "| backend | operation | tmf635 CPU µs/request: server / machine | baseline: server / machine |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    let mut process_table = vec![
        "| backend | program | start (spawn to first answer) ms | idle RSS after start MiB | idle RSS after load MiB | usages created |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    for backend in common::backends() {
        // Rounds alternate the two programs, so a slow spell of the machine falls on both.
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let Some(measured) = measure(TMF635, &backend, connections, seconds).await else {
                break;
            };
            ours.push(measured);
            theirs.extend(measure(BASELINE, &backend, connections, seconds).await);
        }
        if ours.is_empty() {
            continue;
        }
        for (i, (_, label)) in OPERATIONS.iter().enumerate() {
            let (mine, mine_cpu) = median(&ours, i);
            let (theirs_op, theirs_cpu) = median(&theirs, i);
            let ratios = round_ratios(&ours, &theirs, i);
            let ratio = match ratios.get(ratios.len() / 2) {
                Some(median) if ratios.len() > 1 => {
                    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
                    format!("{median:.2} ({})", each.join(", "))
                }
                Some(only) => format!("{only:.2}"),
                None => "-".into(),
            };
            load_table.push(format!(
                "| {backend} | {label} | {} | {} | {ratio} |",
                cells(mine),
                cells(theirs_op)
            ));
            let cpu = |figures: Option<(f64, f64)>| match figures {
                Some((server, machine)) => format!("{server:.0} / {machine:.0}"),
                None => "-".into(),
            };
            cpu_table.push(format!(
                "| {backend} | {label} | {} | {} |",
                cpu(mine_cpu),
                cpu(theirs_cpu)
            ));
        }
        let (ours, baseline) = (ours.first(), theirs.first());
        for (name, measured) in [("tmf635", ours), ("baseline", baseline)] {
            let Some(m) = measured else {
                process_table.push(format!(
                    "| {backend} | {name} | did not start | - | - | - |"
                ));
                continue;
            };
            process_table.push(format!(
                "| {backend} | {name} | {:.0} | {} | {} | {} |",
                m.start.as_secs_f64() * 1000.0,
                mib(m.rss_started),
                mib(m.rss_after_load),
                m.usages
            ));
        }
    }
    println!(
        "{cores} cores (available_parallelism), {connections} connections, {seconds} s per operation after a 1 s warm-up, {rounds} round(s) per program (each program's median round of each operation is shown; the ratio is the median of the rounds' ratios, a round being one run of each program, back to back; start and RSS are the first round's); load generator and server share the cores.\n"
    );
    println!("{}\n", load_table.join("\n"));
    println!("{}\n", cpu_table.join("\n"));
    println!("{}", process_table.join("\n"));
}
