//! `switchboard bench load`: flow turns per second against running servers, over HTTP.
//!
//! `--conversations` customers talk at once (a closed loop: each sends its next message when
//! the last is answered). Each is a web customer signed in by the host page (a signed identity
//! for the demo's C2004), asking to add data to their line, choosing 1 GB and declining at the
//! confirmation: three flow turns, none of which changes the account. Every message goes to
//! the next URL in turn, so with several instances one conversation's messages alternate
//! between them. The first fifth of the time (at most 5 s) warms up and is not counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::BadInput;
use crate::config::Secret;

/// The customer the load signs in as, and the script of each conversation with what each
/// reply must be waiting for (a reply that went astray would time the wrong thing).
const CUSTOMER: &str = "C2004";
const SCRIPT: &[(&str, Option<&str>)] =
    &[("I want to add some data to my line", Some("data_gb")), ("1 GB", Some("confirmation")), ("no thanks", None)];

struct Sample {
    ms: f64,
    counted: bool,
}

pub fn run(
    urls: &[String],
    widget_secret: &str,
    conversations: usize,
    seconds: u64,
    json_output: bool,
) -> anyhow::Result<()> {
    if urls.is_empty() || urls.iter().any(|url| !(url.starts_with("http://") || url.starts_with("https://"))) {
        return Err(BadInput("--url takes http:// or https:// base URLs".into()).into());
    }
    if !(1..=1024).contains(&conversations) {
        return Err(BadInput("--conversations must be between 1 and 1024".into()).into());
    }
    if !(1..=3600).contains(&seconds) {
        return Err(BadInput("--seconds must be between 1 and 3600".into()).into());
    }
    if widget_secret.is_empty() {
        return Err(
            BadInput("--widget-secret (or BENCH_WIDGET_SECRET) is needed to sign the customers in".into()).into()
        );
    }
    let urls: Vec<String> = urls.iter().map(|url| url.trim_end_matches('/').to_string()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = runtime.block_on(measure(Arc::new(urls), Secret::new(widget_secret), conversations, seconds))?;
    if json_output {
        println!("{report}");
    } else {
        println!(
            "{} flow turns/s over {} instance(s), {} conversations: p50 {:.1} ms, p95 {:.1} ms, {:.1} database round trips per turn",
            report["turns_per_second"],
            report["instances"],
            report["conversations"],
            report["p50_ms"].as_f64().unwrap_or(0.0),
            report["p95_ms"].as_f64().unwrap_or(0.0),
            report["round_trips_per_turn"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

async fn measure(urls: Arc<Vec<String>>, secret: Secret, conversations: usize, seconds: u64) -> anyhow::Result<Value> {
    // Idle connections are let go before the server's keep-alive ends (5 s), so a request never
    // goes out on a connection the server is closing.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conversations)
        .pool_idle_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(60))
        .build()?;
    let round_trips_before = round_trips(&client, &urls).await?;
    let started = Instant::now();
    let warm_up = Duration::from_secs(seconds / 5).min(Duration::from_secs(5));
    let counted_from = started + warm_up;
    let until = counted_from + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for customer in 0..conversations {
        let (client, urls, secret) = (client.clone(), urls.clone(), secret.clone());
        tasks.push(tokio::spawn(
            async move { customer_loop(customer, client, urls, secret, counted_from, until).await },
        ));
    }
    let mut samples = Vec::new();
    let mut n_requests = 0usize;
    for task in tasks {
        let (mine, requests) = task.await??;
        samples.extend(mine);
        n_requests += requests;
    }
    let round_trips_after = round_trips(&client, &urls).await?;
    let all_turns = samples.len();
    let mut counted: Vec<f64> = samples.iter().filter(|sample| sample.counted).map(|sample| sample.ms).collect();
    counted.sort_by(f64::total_cmp);
    let round_trips = round_trips_after.saturating_sub(round_trips_before);
    Ok(json!({
        "instances": urls.len(),
        "conversations": conversations,
        "seconds": seconds,
        "turns": counted.len(),
        "turns_per_second": (counted.len() as f64 / seconds as f64 * 10.0).round() / 10.0,
        "p50_ms": super::bench::percentile(&counted, 0.5),
        "p95_ms": super::bench::percentile(&counted, 0.95),
        "p99_ms": super::bench::percentile(&counted, 0.99),
        "requests": n_requests,
        "round_trips": round_trips,
        // Every statement of the run (warm-up and the conversations' creation included) per turn.
        "round_trips_per_turn": if all_turns == 0 { 0.0 } else { round_trips as f64 / all_turns as f64 },
    }))
}

/// One customer: conversation after conversation until `until`; each message timed.
async fn customer_loop(
    customer: usize,
    client: reqwest::Client,
    urls: Arc<Vec<String>>,
    secret: Secret,
    counted_from: Instant,
    until: Instant,
) -> anyhow::Result<(Vec<Sample>, usize)> {
    let mut samples = Vec::new();
    let mut next = customer;
    let mut requests = 0;
    while Instant::now() < until {
        let expires = crate::channels::identity::unix_now() + 3600;
        let hash = crate::channels::identity::sign_identity(&secret, CUSTOMER, expires);
        let base = &urls[next % urls.len()];
        next += 1;
        let created: Value = client
            .post(format!("{base}/api/v1/conversations"))
            .json(
                &json!({"channel": "web", "customer_id": CUSTOMER, "customer_expires": expires, "customer_hash": hash}),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        requests += 1;
        let id = created["id"].as_str().ok_or_else(|| anyhow::anyhow!("no conversation id in {created}"))?.to_string();
        for (text, awaiting) in SCRIPT {
            let base = &urls[next % urls.len()];
            next += 1;
            let sent = Instant::now();
            let response = client
                .post(format!("{base}/api/v1/conversations/{id}/messages"))
                .json(&json!({"text": text}))
                .send()
                .await?;
            let status = response.status();
            let turn: Value = response.json().await.unwrap_or(Value::Null);
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            requests += 1;
            if !status.is_success() {
                anyhow::bail!("{text:?} answered {status}: {turn}");
            }
            if let Some(awaiting) = awaiting
                && turn["awaiting"].as_str() != Some(awaiting)
            {
                anyhow::bail!("the flow went astray at {text:?}: {turn}");
            }
            samples.push(Sample { ms, counted: sent >= counted_from && Instant::now() <= until });
        }
    }
    Ok((samples, requests))
}

/// The database round trips every instance counted so far (`/metrics`).
async fn round_trips(client: &reqwest::Client, urls: &[String]) -> anyhow::Result<u64> {
    let mut total = 0;
    for url in urls {
        let text = client.get(format!("{url}/metrics")).send().await?.error_for_status()?.text().await?;
        total += text
            .lines()
            .find_map(|line| line.strip_prefix("switchboard_storage_round_trips_total "))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}
