//! Handler CPU: each handler over the in-memory store, so the figure is parsing,
//! validation, authorization and serialization alone.

use std::hint::black_box;

use asyncjob_shared::config::{AuthMode, Config};
use asyncjob_shared::model::{AsyncJob, CodeSet, JobStatus, JobType, StoredJob, instant};
use asyncjob_shared::store::MemoryStore;
use asyncjob_tests::ApiRequest;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lambda_http::Request;

fn config() -> Config {
    let mut config = Config::from_lookup(|_| None).unwrap();
    config.auth.mode = AuthMode::Local;
    config
}

fn job(status: JobStatus, seconds_ago: i64) -> StoredJob {
    let at = instant::format(instant::now() - time::Duration::seconds(seconds_ago));
    let mut job = AsyncJob::accepted(
        JobType::DataMigration,
        2,
        "https://api.test/$data-migration".into(),
        &at,
    );
    job.status = status;
    StoredJob::new(job)
}

/// A store of 100 jobs and the id of an accepted one.
fn store() -> (MemoryStore, String) {
    let store = MemoryStore::new(config().retention);
    for n in 0..100 {
        store.put(job(<JobStatus as CodeSet>::ALL[n % 4], n as i64));
    }
    let accepted = job(JobStatus::Accepted, 0);
    let id = accepted.job.id.to_string();
    store.put(accepted);
    (store, id)
}

fn handlers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = &config();
    let (store, id) = store();
    let mut group = c.benchmark_group("handler-cpu");
    let request = |r: ApiRequest| move || -> Request { r.clone().build() };

    let status_request = request(ApiRequest::get(&format!("/job/{id}/status")));
    group.bench_function("status", |b| {
        b.to_async(&runtime).iter_batched(
            &status_request,
            |r| async { black_box(status::handle(&store, config, r).await) },
            BatchSize::SmallInput,
        )
    });
    let read_request = request(ApiRequest::get(&format!("/AsyncJob/{id}")));
    group.bench_function("read", |b| {
        b.to_async(&runtime).iter_batched(
            &read_request,
            |r| async { black_box(search::handle(&store, config, r).await) },
            BatchSize::SmallInput,
        )
    });
    let search_request = request(ApiRequest::get(
        "/AsyncJob?status=completed,error&_count=20",
    ));
    group.bench_function("search", |b| {
        b.to_async(&runtime).iter_batched(
            &search_request,
            |r| async { black_box(search::handle(&store, config, r).await) },
            BatchSize::SmallInput,
        )
    });
    let kickoff_request = request(ApiRequest::post("/$data-migration").prefer_async());
    group.bench_function("kickoff", |b| {
        b.to_async(&runtime).iter_batched(
            || (MemoryStore::new(config.retention), kickoff_request()),
            |(fresh, r)| async move { black_box(kickoff::handle(&fresh, config, r).await) },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cancel", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                let fresh = MemoryStore::new(config.retention);
                let accepted = job(JobStatus::Accepted, 0);
                let r = ApiRequest::delete(&format!("/job/{}/status", accepted.job.id)).build();
                fresh.put(accepted);
                (fresh, r)
            },
            |(fresh, r)| async move { black_box(control::handle(&fresh, config, r).await) },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, handlers);
criterion_main!(benches);
