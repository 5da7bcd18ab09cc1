//! The commands: each asks the API, says what came of it on stdout (a person's summary, or
//! the resources as JSON), and returns the exit code.

use serde_json::Value;

use crate::Outcome;
use crate::api::{Api, Problem, token};
use crate::args::{Cli, Command, Output, Wait};
use crate::display::Display;
use crate::follow::{Ended, follow};

/// The largest page the API serves.
const MAX_PAGE: usize = 1000;

pub async fn run(cli: Cli) -> Result<Outcome, Problem> {
    let token = token(cli.token, cli.token_command.as_deref())?;
    let api = Api::new(&cli.url, token)?;
    let json = cli.output == Output::Json;
    match cli.command {
        Command::Migrate { version, wait } => migrate(&api, version, &wait, json).await,
        Command::Status { id, wait } => status(&api, &id, &wait, json).await,
        Command::Pause { id } => steer(&api, &id, "pause", json).await,
        Command::Resume { id } => steer(&api, &id, "resume", json).await,
        Command::Cancel { id } => cancel(&api, &id, json).await,
        Command::List {
            status,
            job_type,
            limit,
        } => list(&api, status, job_type, limit, json).await,
        Command::Get { id } => get(&api, &id, json).await,
        Command::Migrations => migrations(&api, json).await,
    }
}

async fn migrate(
    api: &Api,
    version: Option<u32>,
    wait: &Wait,
    json: bool,
) -> Result<Outcome, Problem> {
    let path = match version {
        Some(version) => format!("/$data-migration?dataVersion={version}"),
        None => "/$data-migration".to_owned(),
    };
    let kicked_off = api.post(&path).await?;
    if kicked_off.status != 202 {
        return Err(kicked_off.refusal());
    }
    let location = kicked_off
        .header("content-location")
        .unwrap_or_default()
        .to_owned();
    let id = location
        .trim_end_matches("/status")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    eprintln!("job {id}: kicked off; status at {location}");
    if wait.wait {
        return wait_for(api, &id, wait, json).await;
    }
    if json {
        print_json(&read(api, &id).await?);
    } else {
        println!("{location}");
    }
    Ok(Outcome::Success)
}

async fn status(api: &Api, id: &str, wait: &Wait, json: bool) -> Result<Outcome, Problem> {
    if wait.wait {
        return wait_for(api, id, wait, json).await;
    }
    let reply = api.get(&format!("/job/{id}/status"), None).await?;
    let ended = match reply.status {
        200 => Ended::Completed(reply.body),
        500 if reply.body["resourceType"] == "OperationOutcome" => Ended::Failed(reply.body),
        202 => {
            if json {
                print_json(&reply.body);
            } else {
                let progress = reply.header("x-progress").unwrap_or("queued");
                println!("job {id}: accepted, {progress}");
            }
            return Ok(Outcome::Success);
        }
        404 => {
            let read = api.get(&format!("/AsyncJob/{id}"), None).await?;
            if read.status != 200 {
                return Err(read.refusal());
            }
            Ended::Cancelled(read.body)
        }
        _ => return Err(reply.refusal()),
    };
    Ok(report(id, ended, json))
}

/// Follows the job to its end, then reports it; Ctrl-C stops waiting, or with
/// `--cancel-on-interrupt` cancels the job.
async fn wait_for(api: &Api, id: &str, wait: &Wait, json: bool) -> Result<Outcome, Problem> {
    let mut display = Display::for_stderr();
    let ended = follow(api, id, wait.timeout, &mut display).await?;
    if matches!(ended, Ended::Interrupted) && wait.cancel_on_interrupt {
        eprintln!("job {id}: interrupted; cancelling it");
        return cancel(api, id, json).await.map(|_| Outcome::Cancelled);
    }
    Ok(report(id, ended, json))
}

/// Says how the job ended, and the exit code that goes with it.
fn report(id: &str, ended: Ended, json: bool) -> Outcome {
    let status_url = format!("/job/{id}/status");
    match ended {
        Ended::Completed(job) => {
            if json {
                print_json(&job);
            } else {
                println!("job {id}: completed");
                print_output(&job);
            }
            Outcome::Success
        }
        Ended::Failed(outcome) => {
            if json {
                print_json(&outcome);
            } else {
                let said = outcome["issue"][0]["diagnostics"]
                    .as_str()
                    .unwrap_or("no reason given");
                println!("job {id}: error: {said}");
            }
            Outcome::Failed
        }
        Ended::Cancelled(job) => {
            if json {
                print_json(&job);
            } else {
                println!("job {id}: cancelled");
            }
            Outcome::Cancelled
        }
        Ended::TimedOut | Ended::Interrupted => {
            eprintln!("job {id}: stopped waiting; the job goes on ({status_url})");
            Outcome::StoppedWaiting
        }
    }
}

/// A completed job's output, one line a migration.
fn print_output(job: &Value) {
    for parameter in job["output"]["parameter"].as_array().into_iter().flatten() {
        match parameter["name"].as_str() {
            Some("dataVersion") => println!("  data version: {}", parameter["valueInteger"]),
            Some("migration") => println!(
                "  migration {} {}: {} items scanned, {} changed, {} skipped, {} ms",
                part(parameter, "version"),
                part(parameter, "name"),
                part(parameter, "itemsScanned"),
                part(parameter, "itemsChanged"),
                part(parameter, "itemsSkipped"),
                part(parameter, "durationMs")
            ),
            _ => {}
        }
    }
}

async fn cancel(api: &Api, id: &str, json: bool) -> Result<Outcome, Problem> {
    let reply = api.delete(&format!("/job/{id}/status")).await?;
    if reply.status != 202 {
        return Err(reply.refusal());
    }
    if json {
        print_json(&read(api, id).await?);
    } else {
        println!("job {id}: cancelled");
    }
    Ok(Outcome::Success)
}

/// `$pause` or `$resume` of the job; the answer is the job as it is now.
async fn steer(api: &Api, id: &str, operation: &str, json: bool) -> Result<Outcome, Problem> {
    let reply = api.invoke(&format!("/AsyncJob/{id}/${operation}")).await?;
    if reply.status != 200 {
        return Err(reply.refusal());
    }
    if json {
        print_json(&reply.body);
        return Ok(Outcome::Success);
    }
    let paused = reply.body["output"]["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|parameter| parameter["name"] == "paused");
    match paused {
        Some(paused) => println!(
            "job {id}: paused by {} since {}",
            part(paused, "by"),
            part(paused, "since")
        ),
        None => println!("job {id}: running (not paused)"),
    }
    Ok(Outcome::Success)
}

async fn list(
    api: &Api,
    status: Option<String>,
    job_type: Option<String>,
    limit: usize,
    json: bool,
) -> Result<Outcome, Problem> {
    let mut query = vec![format!("_count={}", limit.clamp(1, MAX_PAGE))];
    query.extend(status.map(|status| format!("status={status}")));
    query.extend(job_type.map(|job_type| format!("type={job_type}")));
    let mut next = Some(format!("/AsyncJob?{}", query.join("&")));
    let mut jobs = Vec::new();
    while let Some(page) = next.take().filter(|_| jobs.len() < limit) {
        let reply = api.get(&page, None).await?;
        if reply.status != 200 {
            return Err(reply.refusal());
        }
        jobs.extend(
            reply.body["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|entry| entry["search"]["mode"] == "match")
                .map(|entry| entry["resource"].clone()),
        );
        next = reply.body["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|link| link["relation"] == "next")
            .and_then(|link| link["url"].as_str())
            .map(str::to_owned);
    }
    jobs.truncate(limit);
    if json {
        print_json(&Value::Array(jobs));
        return Ok(Outcome::Success);
    }
    println!(
        "{:<36}  {:<9}  {:<14}  {:>7}  REQUESTED",
        "ID", "STATUS", "TYPE", "VERSION"
    );
    for job in &jobs {
        println!(
            "{:<36}  {:<9}  {:<14}  {:>7}  {}",
            text(&job["id"]),
            text(&job["status"]),
            text(&job["type"]),
            text(&job["dataVersion"]),
            text(&job["requestTime"])
        );
    }
    Ok(Outcome::Success)
}

async fn get(api: &Api, id: &str, json: bool) -> Result<Outcome, Problem> {
    let job = read(api, id).await?;
    if json {
        print_json(&job);
    } else {
        println!("job {id}: {}", text(&job["status"]));
        for field in [
            "type",
            "dataVersion",
            "requestTime",
            "transactionTime",
            "request",
        ] {
            if !job[field].is_null() {
                println!("  {field}: {}", text(&job[field]));
            }
        }
        print_output(&job);
    }
    Ok(Outcome::Success)
}

async fn migrations(api: &Api, json: bool) -> Result<Outcome, Problem> {
    let reply = api.get("/$data-migration", None).await?;
    if reply.status != 200 {
        return Err(reply.refusal());
    }
    if json {
        print_json(&reply.body);
        return Ok(Outcome::Success);
    }
    let parameters = reply.body["parameter"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let named = |name: &'static str| parameters.iter().filter(move |p| p["name"] == name);
    let stored = named("dataVersion")
        .next()
        .map(|p| text(&p["valueInteger"]))
        .unwrap_or_default();
    println!("data version: {stored}");
    for migration in named("migration") {
        println!(
            "  {:>3}  {:<24}  {}",
            part(migration, "version"),
            part(migration, "name"),
            part(migration, "description")
        );
    }
    for running in named("running") {
        println!(
            "running: job {} to version {} ({})",
            part(running, "job"),
            part(running, "dataVersion"),
            part(running, "status")
        );
    }
    Ok(Outcome::Success)
}

/// The job as it is (`GET /AsyncJob/{id}`).
async fn read(api: &Api, id: &str) -> Result<Value, Problem> {
    let reply = api.get(&format!("/AsyncJob/{id}"), None).await?;
    if reply.status == 200 {
        Ok(reply.body)
    } else {
        Err(reply.refusal())
    }
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON prints")
    );
}

/// The value of the part `name` of a `Parameters` parameter, as text (empty when absent).
fn part(parameter: &Value, name: &str) -> String {
    parameter["part"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|part| part["name"] == name)
        .and_then(|part| {
            [
                "valueInteger",
                "valueString",
                "valueId",
                "valueUrl",
                "valueInstant",
            ]
            .iter()
            .find_map(|kind| part.get(*kind))
        })
        .map(text)
        .unwrap_or_default()
}

/// A JSON value as a person reads it: strings without quotes, nothing for null.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
