//! `make bench`: measures the service and writes BENCHMARKS.md. Every ratio's two sides are
//! measured in this run, on this machine.

mod cold_start;
mod overhead;
mod report;
mod scale;
mod seed;
mod segments;
mod stats;
mod throughput;

use std::path::PathBuf;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let step = |name: &str| {
        eprintln!(
            "bench: {name} ({:.0} s in)",
            started.elapsed().as_secs_f64()
        )
    };

    step("handler overhead against the engine");
    let overhead = overhead::run().await;
    step("cold starts");
    let scene = cold_start::Scene::new().await;
    let rust = cold_start::rust_status(&root);
    let mut cold = vec![scene.cold_start(&rust).await];
    if let Some(node) = cold_start::node_status(&root) {
        cold.push(scene.cold_start(&node).await);
    }
    step("peak memory over 1000 requests");
    let peak_memory = scene.peak_memory(&rust, 1000).await;
    step("worker throughput");
    let throughput = throughput::run().await;
    step("search at 1k and 100k jobs");
    let scale = scale::run().await;
    step("migrations in segments over a million jobs");
    let segments = segments::run(&root).await;

    let report = report::Report {
        overhead,
        cpu: report::criterion_cpu(&root),
        cold,
        peak_memory,
        sizes: report::binary_sizes(&root),
        throughput,
        scale,
        segments,
        elapsed: started.elapsed(),
    };
    let path = root.join("BENCHMARKS.md");
    std::fs::write(&path, report.markdown()).unwrap();
    step("done: BENCHMARKS.md written");
}
