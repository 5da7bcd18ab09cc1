//! Cold start of a function's bootstrap under a fake Lambda Runtime API: exec to the first
//! `next` call (init) and exec to the first response of a status request that reads the
//! engine; the same for the status handler in Node.js; and peak memory over many requests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use asyncjob_tests::{ApiRequest, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::stats::{Summary, summarize};

/// What the fake runtime saw, when.
enum Seen {
    Next(Instant),
    Response(Instant),
}

/// A Lambda Runtime API that hands out `invocations` copies of one event, then holds any
/// further `next` call open.
struct FakeRuntime {
    address: String,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl FakeRuntime {
    async fn start(event: String, invocations: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tell, seen) = mpsc::unbounded_channel();
        let left = Arc::new(AtomicUsize::new(invocations));
        let event = Arc::new(event);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, event.clone(), left.clone(), tell.clone()));
            }
        });
        Self { address, seen }
    }

    async fn next_seen(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(30), self.seen.recv())
            .await
            .expect("the function answers within 30 s")
            .expect("the runtime is up")
    }
}

async fn serve(
    mut socket: TcpStream,
    event: Arc<String>,
    left: Arc<AtomicUsize>,
    tell: mpsc::UnboundedSender<Seen>,
) {
    let mut buffer = Vec::new();
    loop {
        // One request: its head, then as many body bytes as it announces.
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        let now = Instant::now();
        let reply = if path.ends_with("/invocation/next") {
            let _ = tell.send(Seen::Next(now));
            if left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
            {
                // No more work: hold the call open, as Lambda does between invocations.
                std::future::pending::<()>().await;
            }
            let deadline =
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(60);
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {}\r\n\
                 lambda-runtime-deadline-ms: {}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:status\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\ncontent-length: {}\r\n\r\n{}",
                now.elapsed().as_nanos(),
                deadline.as_millis(),
                event.len(),
                event
            )
        } else {
            if path.ends_with("/response") {
                let _ = tell.send(Seen::Response(now));
            }
            "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}".to_owned()
        };
        if socket.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// How to start one function process.
pub struct Program {
    pub name: &'static str,
    pub command: Vec<String>,
}

fn spawn(program: &Program, runtime: &str, engine: &str, table: &str) -> Child {
    Command::new(&program.command[0])
        .args(&program.command[1..])
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", "status")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/status")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL_DYNAMODB", engine)
        .env("ASYNCJOB_TABLE", table)
        .env("ASYNCJOB_AUTH", "local")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", program.name))
}

pub struct ColdStart {
    pub name: &'static str,
    pub init: Summary,
    pub first_response: Summary,
}

pub const RUNS: usize = 25;

/// The engine and a job to poll: what every cold start reads.
pub struct Scene {
    env: TestEnv,
    event: String,
}

impl Scene {
    pub async fn new() -> Self {
        let env = TestEnv::start().await;
        let job = env.kick_off(2).await;
        let event = ApiRequest::get(&format!("/job/{}/status", job.id))
            .event()
            .to_string();
        Self { env, event }
    }

    fn engine(&self) -> String {
        self.env.endpoint.clone()
    }

    pub async fn cold_start(&self, program: &Program) -> ColdStart {
        let (mut inits, mut responses) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let mut runtime = FakeRuntime::start(self.event.clone(), 1).await;
            let started = Instant::now();
            let mut child = spawn(program, &runtime.address, &self.engine(), &self.env.table);
            let Seen::Next(init) = runtime.next_seen().await else {
                panic!("{} answered before asking for work", program.name);
            };
            let response = loop {
                if let Seen::Response(at) = runtime.next_seen().await {
                    break at;
                }
            };
            let _ = child.kill();
            let _ = child.wait();
            inits.push(init - started);
            responses.push(response - started);
        }
        ColdStart {
            name: program.name,
            init: summarize(inits),
            first_response: summarize(responses),
        }
    }

    /// Peak resident memory (VmHWM) after `invocations` status requests, in MiB.
    pub async fn peak_memory(&self, program: &Program, invocations: usize) -> f64 {
        let mut runtime = FakeRuntime::start(self.event.clone(), invocations).await;
        let mut child = spawn(program, &runtime.address, &self.engine(), &self.env.table);
        let mut answered = 0;
        while answered < invocations {
            if let Seen::Response(_) = runtime.next_seen().await {
                answered += 1;
            }
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024.0
    }
}

pub fn rust_status(root: &Path) -> Program {
    Program {
        name: "status (Rust, release)",
        command: vec![root.join("target/release/status").display().to_string()],
    }
}

/// `None` when Node.js is not installed.
pub fn node_status(root: &Path) -> Option<Program> {
    let path = std::env::var("PATH").unwrap_or_default();
    let node = std::env::split_paths(&path)
        .map(|folder| folder.join("node"))
        .find(|candidate| candidate.is_file())?;
    Some(Program {
        name: "status (Node.js, @aws-sdk/client-dynamodb)",
        command: vec![
            node.display().to_string(),
            root.join("bench/node/status.mjs").display().to_string(),
        ],
    })
}
