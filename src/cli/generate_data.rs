//! `revwallet generate-data`: creates wallets and random operations against a running instance over HTTP.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde_json::{Value, json};

use crate::config::Hidden;

#[derive(Debug, Clone, Args)]
pub struct GenerateDataArgs {
    /// Base URL of a running revwallet.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Wallets to create.
    #[arg(long, default_value_t = 10)]
    pub wallets: u32,
    /// Random deposits, withdrawals and transfers to run after creating the wallets.
    #[arg(long, default_value_t = 100)]
    pub operations: u32,
    /// Currency of the wallets.
    #[arg(long, default_value = "EUR")]
    pub currency: String,
    /// A `write` (or `admin`) API key for the server (not needed when it runs with `--auth off`).
    #[arg(long, env = "REVWALLET_API_KEY", hide_env_values = true)]
    pub api_key: Option<Hidden>,
}

/// Returns how many operations were refused by the server (insufficient funds is expected now and then).
pub async fn generate_data(args: GenerateDataArgs) -> anyhow::Result<u32> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = &args.api_key {
        let mut bearer =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.0.trim()))
                .map_err(|_| anyhow::anyhow!("REVWALLET_API_KEY is not a valid header value"))?;
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(headers)
        .build()?;
    let base = args.url.trim_end_matches('/');
    let total = u64::from(args.wallets) + u64::from(args.operations);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut ids = Vec::with_capacity(args.wallets as usize);
    for n in 0..args.wallets {
        let initial = rand::rng().random_range(0..100_000_u32);
        let body = json!({
            "owner": format!("generated-{n}"),
            "currency": args.currency,
            "initial_balance": format!("{}.{:02}", initial / 100, initial % 100),
        });
        let response = client
            .post(format!("{base}/wallet/"))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("creating a wallet at {base}"))?;
        anyhow::ensure!(
            response.status().is_success(),
            "creating a wallet: {}",
            response.status()
        );
        let wallet: Value = response.json().await?;
        ids.push(wallet["id"].as_str().unwrap_or_default().to_owned());
        bar.inc(1);
    }
    anyhow::ensure!(
        !ids.is_empty() || args.operations == 0,
        "operations need at least one wallet"
    );
    let mut refused = 0;
    for _ in 0..args.operations {
        let (path, body) = random_operation(&ids);
        let response = client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await?;
        if response.status().is_server_error() {
            anyhow::bail!("{path} answered {}", response.status());
        }
        if !response.status().is_success() {
            refused += 1;
        }
        bar.set_message(format!("{refused} refused"));
        bar.inc(1);
    }
    bar.finish();
    Ok(refused)
}

fn random_operation(ids: &[String]) -> (&'static str, Value) {
    let mut rng = rand::rng();
    let pick = |rng: &mut rand::rngs::ThreadRng| ids[rng.random_range(0..ids.len())].clone();
    let cents = rng.random_range(1..50_000_u32);
    let amount = format!("{}.{:02}", cents / 100, cents % 100);
    match rng.random_range(0..10) {
        0..=4 => (
            "/wallet/deposit",
            json!({"id": pick(&mut rng), "amount": amount}),
        ),
        5..=7 => (
            "/wallet/withdraw",
            json!({"id": pick(&mut rng), "amount": amount}),
        ),
        _ => {
            let (from, to) = (pick(&mut rng), pick(&mut rng));
            (
                "/wallet/transfer",
                json!({"from_id": from, "to_id": to, "amount": amount}),
            )
        }
    }
}
