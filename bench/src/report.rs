//! BENCHMARKS.md: the figures of one run, each beside its target.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::cold_start::{self, ColdStart};
use crate::overhead;
use crate::scale;
use crate::segments;
use crate::stats::{ratio, show};
use crate::throughput;
use asyncjob_tests::template::deployed_binaries;

const CPU_HANDLERS: [&str; 5] = ["status", "read", "search", "kickoff", "cancel"];

pub struct CpuRow {
    pub handler: &'static str,
    pub median: Duration,
    pub p99: Duration,
}

pub struct Report {
    pub overhead: Vec<overhead::Row>,
    pub cpu: Vec<CpuRow>,
    pub cold: Vec<ColdStart>,
    pub peak_memory: f64,
    pub sizes: Vec<(String, Option<u64>, Option<u64>)>,
    pub throughput: throughput::Result,
    pub scale: Vec<scale::Row>,
    pub segments: segments::Result,
    pub elapsed: Duration,
}

/// Criterion's median per handler, and the 99th percentile of its sample means.
pub fn criterion_cpu(root: &Path) -> Vec<CpuRow> {
    let read = |handler: &str, file: &str| -> Option<Value> {
        let path = root.join(format!("target/criterion/handler-cpu/{handler}/new/{file}"));
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    };
    CPU_HANDLERS
        .iter()
        .filter_map(|handler| {
            let median = read(handler, "estimates.json")?["median"]["point_estimate"].as_f64()?;
            let sample = read(handler, "sample.json")?;
            let iters = sample["iters"].as_array()?;
            let times = sample["times"].as_array()?;
            let means: Vec<Duration> = iters
                .iter()
                .zip(times)
                .filter_map(|(i, t)| Some(Duration::from_nanos((t.as_f64()? / i.as_f64()?) as u64)))
                .collect();
            Some(CpuRow {
                handler,
                median: Duration::from_nanos(median as u64),
                p99: crate::stats::summarize(means).p99,
            })
        })
        .collect()
}

/// Bytes of each function's release binary: x86_64 (`target/release`) and arm64
/// (`target/lambda`, from `make build`), where built.
pub fn binary_sizes(root: &Path) -> Vec<(String, Option<u64>, Option<u64>)> {
    let size = |path: std::path::PathBuf| std::fs::metadata(path).ok().map(|m| m.len());
    deployed_binaries()
        .into_iter()
        .map(|name| {
            let x86 = size(root.join("target/release").join(&name));
            let arm = size(root.join("target/lambda").join(&name).join("bootstrap"));
            (name, x86, arm)
        })
        .collect()
}

fn verdict(met: bool, by: String) -> String {
    if met {
        "met".to_owned()
    } else {
        format!("missed by {by}")
    }
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or("not built".to_owned(), |b| {
        format!("{:.2} MB", b as f64 / 1e6)
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .map_or(String::new(), |kib| {
            format!(", {:.0} GiB", kib / 1024.0 / 1024.0)
        });
    format!(
        "{cpu}, {cores} cores{memory}, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let date = time::OffsetDateTime::now_utc().date();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by `make bench` on {date}, on {}. The run took {:.0} s. Every ratio's two \
             sides were measured in this run. `make bench` builds the release binaries \
             (`cargo build --release`), runs the criterion benchmark \
             (`cargo bench -p asyncjob-bench --bench handlers`) and then the driver \
             (`cargo run --release -p asyncjob-bench`), which writes this page.\n",
            machine(),
            self.elapsed.as_secs_f64()
        );

        self.overhead(&mut out);
        self.cpu(&mut out);
        self.cold_start(&mut out);
        self.size_and_memory(&mut out);
        self.scale(&mut out);
        self.throughput(&mut out);
        self.segments(&mut out);
        let _ = writeln!(
            out,
            "\nWhat these figures mean, and why a target is missed where one is: \
             [docs/performance.md](docs/performance.md)."
        );
        out
    }

    /// Handler latency against the engine beside the bare calls.
    fn overhead(&self, out: &mut String) {
        let _ = writeln!(out, "## Handler overhead against the engine\n");
        let _ = writeln!(
            out,
            "Each handler against the embedded engine (dynoxide over HTTP on loopback), \
             in turns with the bare DynamoDB calls the handler makes for that request. \
             Target: ratio ≤ 1.15 at p50.\n"
        );
        let _ = writeln!(
            out,
            "| handler | handler p50 | handler p99 | bare calls p50 | bare calls p99 | ratio p50 | target |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for row in &self.overhead {
            let r = ratio(row.handler_latency.p50, row.bare_latency.p50);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {r:.3} | {} |",
                row.handler,
                show(row.handler_latency.p50),
                show(row.handler_latency.p99),
                show(row.bare_latency.p50),
                show(row.bare_latency.p99),
                verdict(r <= 1.15, format!("{:.3}", r - 1.15))
            );
        }
    }

    /// Handler CPU over the in-memory store.
    fn cpu(&self, out: &mut String) {
        let _ = writeln!(out, "\n## Handler CPU\n");
        let _ = writeln!(
            out,
            "Each handler over the in-memory store, from a built request to its response: \
             parsing, validation, authorization, serialization (criterion; p99 is over \
             criterion's sample means). Target: status under 30 µs at p50.\n"
        );
        let _ = writeln!(out, "| handler | median | p99 | target |");
        let _ = writeln!(out, "|---|---|---|---|");
        for row in &self.cpu {
            let target = if row.handler == "status" {
                verdict(
                    row.median < Duration::from_micros(30),
                    show(row.median.saturating_sub(Duration::from_micros(30))),
                )
            } else {
                "—".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {target} |",
                row.handler,
                show(row.median),
                show(row.p99)
            );
        }
        if self.cpu.is_empty() {
            let _ = writeln!(out, "| (no criterion results found) | | | |");
        }
    }

    /// Cold start beside Node.js.
    fn cold_start(&self, out: &mut String) {
        let _ = writeln!(out, "\n## Cold start\n");
        let _ = writeln!(
            out,
            "The process started under a fake Lambda Runtime API ({} runs each): exec to its \
             first `next` call (init), and exec to its first response to a status request \
             that reads the engine. Targets for Rust: init ≤ 6 ms and first response ≤ 8 ms \
             at p50, and Rust/Node.js init ≤ 0.03.\n",
            cold_start::RUNS
        );
        let _ = writeln!(
            out,
            "| program | init p50 | init p99 | first response p50 | first response p99 |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for row in &self.cold {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.name,
                show(row.init.p50),
                show(row.init.p99),
                show(row.first_response.p50),
                show(row.first_response.p99)
            );
        }
        if let [rust, node] = &self.cold[..] {
            let init = ratio(rust.init.p50, node.init.p50);
            let first = ratio(rust.first_response.p50, node.first_response.p50);
            let _ = writeln!(out, "\n| figure | value | target |\n|---|---|---|");
            let _ = writeln!(
                out,
                "| Rust init p50 | {} | {} |",
                show(rust.init.p50),
                verdict(
                    rust.init.p50 <= Duration::from_millis(6),
                    show(rust.init.p50.saturating_sub(Duration::from_millis(6)))
                )
            );
            let _ = writeln!(
                out,
                "| Rust first response p50 | {} | {} |",
                show(rust.first_response.p50),
                verdict(
                    rust.first_response.p50 <= Duration::from_millis(8),
                    show(
                        rust.first_response
                            .p50
                            .saturating_sub(Duration::from_millis(8))
                    )
                )
            );
            let _ = writeln!(
                out,
                "| Rust/Node.js init ratio (p50) | {init:.4} | {} |",
                verdict(init <= 0.03, format!("{:.4}", init - 0.03))
            );
            let _ = writeln!(
                out,
                "| Rust/Node.js first-response ratio (p50) | {first:.4} | — |"
            );
        }
    }

    /// Binary sizes and peak memory.
    fn size_and_memory(&self, out: &mut String) {
        let _ = writeln!(out, "\n## Size and memory\n");
        let _ = writeln!(
            out,
            "Release binaries, stripped (`[profile.release]`: `opt-level = \"s\"`, fat LTO, one \
             codegen unit, `panic = \"abort\"`, `strip = true`). arm64 sizes are those \
             `make build` left in `target/lambda`. Target: ≤ 6 MB each.\n"
        );
        let _ = writeln!(out, "| function | x86_64 | arm64 | target |");
        let _ = writeln!(out, "|---|---|---|---|");
        for (name, x86, arm) in &self.sizes {
            let check = |bytes: &Option<u64>| match bytes {
                None => "—".to_owned(),
                Some(b) => verdict(
                    *b <= 6_000_000,
                    format!("{:.2} MB", (*b as f64 - 6e6) / 1e6),
                ),
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | x86_64 {}; arm64 {} |",
                mb(*x86),
                mb(*arm),
                check(x86),
                check(arm)
            );
        }
        let _ = writeln!(
            out,
            "\nPeak resident memory of the status bootstrap over 1000 requests: {:.1} MiB ({}; target ≤ 24 MiB).",
            self.peak_memory,
            verdict(
                self.peak_memory <= 24.0,
                format!("{:.1} MiB", self.peak_memory - 24.0)
            )
        );
    }

    /// Search latency with a small and a large table.
    fn scale(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n## Scale: search cost follows the page, not the table\n"
        );
        let _ = writeln!(
            out,
            "A 20-item page with {} and with {} jobs in the table. Target: ratio ≤ 1.3.\n",
            scale::SMALL,
            scale::LARGE
        );
        let _ = writeln!(
            out,
            "| search | 1k p50 | 1k p99 | 100k p50 | 100k p99 | ratio p50 | target |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for row in &self.scale {
            let r = ratio(row.large.p50, row.small.p50);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {r:.3} | {} |",
                row.search,
                show(row.small.p50),
                show(row.small.p99),
                show(row.large.p50),
                show(row.large.p99),
                verdict(r <= 1.3, format!("{:.3}", r - 1.3))
            );
        }
    }

    /// The worker beside a bare loop of the same writes.
    fn throughput(&self, out: &mut String) {
        let t = &self.throughput;
        let r = t.worker_per_second / t.bare_per_second;
        let _ = writeln!(out, "\n## Worker throughput\n");
        let _ = writeln!(
            out,
            "Migration 1 (give finished jobs their TTL) over {} jobs, pages of 100, run by the \
             job runner (claim, checkpoint after every page, finish), beside a bare loop of the \
             same Scan pages and UpdateItem calls. Target: ratio ≥ 0.8.\n",
            throughput::ITEMS
        );
        let _ = writeln!(
            out,
            "| worker items/s | bare loop items/s | ratio | target |\n|---|---|---|---|"
        );
        let _ = writeln!(
            out,
            "| {:.0} | {:.0} | {r:.3} | {} |",
            t.worker_per_second,
            t.bare_per_second,
            verdict(r >= 0.8, format!("{:.3}", 0.8 - r))
        );
    }

    /// Migrations in parallel segments over a large table, beside bare loops; a budget; the
    /// status poll while one runs.
    fn segments(&self, out: &mut String) {
        let m = &self.segments;
        let _ = writeln!(out, "\n## Migrations at scale\n");
        let seeded: Vec<String> = m
            .seeded
            .iter()
            .map(|(items, took)| format!("{items} in {:.0} s", took.as_secs_f64()))
            .collect();
        let _ = writeln!(
            out,
            "Jobs seeded by `dev-seed`, the local stack's seeding tool (batches of 25, 8 in \
             flight): {}. A migration that writes every job once, run by the job runner \
             (pages of 100, 16 writes in flight per segment; in segments, each segment its own \
             item, lease and checkpoint, all run by one worker at once), beside a bare loop of \
             the same Scan pages or segments and UpdateItem calls at the same concurrency, \
             measured just before it on the same table. The million-job table is walked in one \
             scan only: the embedded engine keeps no index on the hash a parallel Scan splits \
             the table by, so each page of a segment reads and sorts the whole table, and a \
             parallel walk of a million jobs would take hours here (DynamoDB reads only the \
             page). Segments are measured on the smaller table. Target: ratio ≥ 0.8.\n",
            seeded.join(", ")
        );
        let _ = writeln!(
            out,
            "| jobs | segments | migration time | migration items/s | bare loop items/s | ratio | target |\n|---|---|---|---|---|---|---|"
        );
        for row in &m.rows {
            let r = row.migration_per_second / row.bare_per_second;
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} s | {:.0} | {:.0} | {r:.3} | {} |",
                row.items,
                row.segments,
                row.items as f64 / row.migration_per_second,
                row.migration_per_second,
                row.bare_per_second,
                verdict(r >= 0.8, format!("{:.3}", 0.8 - r))
            );
        }
        let off = (m.budgeted_per_second / f64::from(m.budget) - 1.0).abs();
        let _ = writeln!(
            out,
            "\nThe same migration in {} segments on the smaller table, with a budget of half the \
             bare loop's rate \
             (`ASYNCJOB_MIGRATION_ITEMS_PER_SECOND`), and the status poll (the handler against \
             the engine, one every 20 ms) with that migration running and with none. On this \
             2-core machine the engine, the migration and the poll share the cores, so the \
             running figure is also the engine's contention. Targets: the rate within 10 % of \
             the budget; status p50 running/idle ≤ 1.5.\n",
            m.budget_segments
        );
        let _ = writeln!(out, "| figure | value | target |\n|---|---|---|");
        let _ = writeln!(
            out,
            "| budget | {} items/s | — |\n| measured rate | {:.0} items/s ({:+.1} %) | {} |",
            m.budget,
            m.budgeted_per_second,
            (m.budgeted_per_second / f64::from(m.budget) - 1.0) * 100.0,
            verdict(off <= 0.1, format!("{:.1} %", (off - 0.1) * 100.0))
        );
        let r = ratio(m.status_running.p50, m.status_idle.p50);
        let _ = writeln!(
            out,
            "| status p50 idle / running | {} / {} | — |\n| status p99 idle / running | {} / {} | — |\n| status p50 running/idle | {r:.3} | {} |",
            show(m.status_idle.p50),
            show(m.status_running.p50),
            show(m.status_idle.p99),
            show(m.status_running.p99),
            verdict(r <= 1.5, format!("{:.3}", r - 1.5))
        );
    }
}
