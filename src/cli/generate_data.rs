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
    /// API key sent as `Authorization: Bearer <key>` (a `write` or `admin` key). Without one, the server's own
    /// REVWALLET_BOOTSTRAP_ADMIN_KEY is used when set (inside its container), else no key (for `--auth off`).
    #[arg(long, env = "REVWALLET_API_KEY", hide_env_values = true)]
    pub api_key: Option<Hidden>,
}

/// The key to send: the flag or REVWALLET_API_KEY, else the bootstrap admin key of the environment, which is how
/// `docker compose exec revwallet-api revwallet generate-data` authenticates with no key on its command line.
fn api_key(given: Option<String>, bootstrap: Option<String>) -> Option<String> {
    given
        .or(bootstrap)
        .map(|key| key.trim().to_owned())
        .filter(|key| !key.is_empty())
}

/// A default `Authorization` header for every request; marked sensitive so it never shows in debug output.
fn auth_headers(key: Option<&str>) -> anyhow::Result<reqwest::header::HeaderMap> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .context("the API key holds characters an HTTP header cannot carry")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(headers)
}

/// Turns a 401 or 403 into advice; other refusals are counted by the caller.
fn refused_access(status: reqwest::StatusCode, has_key: bool) -> Option<anyhow::Error> {
    match status {
        reqwest::StatusCode::UNAUTHORIZED if has_key => Some(anyhow::anyhow!(
            "the server refused the API key (401): check --api-key / REVWALLET_API_KEY"
        )),
        reqwest::StatusCode::UNAUTHORIZED => Some(anyhow::anyhow!(
            "the server wants an API key (401): pass --api-key or set REVWALLET_API_KEY \
             (e.g. a key from `revwallet keys create --role write`)"
        )),
        reqwest::StatusCode::FORBIDDEN => Some(anyhow::anyhow!(
            "the API key may not create wallets or move money (403): use a `write` or `admin` key"
        )),
        _ => None,
    }
}

/// Returns how many operations were refused by the server (insufficient funds is expected now and then).
pub async fn generate_data(args: GenerateDataArgs) -> anyhow::Result<u32> {
    let key = api_key(
        args.api_key.map(|key| key.0),
        std::env::var("REVWALLET_BOOTSTRAP_ADMIN_KEY").ok(),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(auth_headers(key.as_deref())?)
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
        if let Some(error) = refused_access(response.status(), key.is_some()) {
            return Err(error);
        }
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
        if let Some(error) = refused_access(response.status(), key.is_some()) {
            return Err(error);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_given_key_wins_over_the_bootstrap_key_and_blanks_count_as_none() {
        let given = Some("rw_given".to_owned());
        let bootstrap = Some("rw_bootstrap".to_owned());
        assert_eq!(
            api_key(given, bootstrap.clone()).as_deref(),
            Some("rw_given")
        );
        assert_eq!(api_key(None, bootstrap).as_deref(), Some("rw_bootstrap"));
        assert_eq!(api_key(Some("  ".to_owned()), None), None);
        assert_eq!(api_key(None, None), None);
    }

    #[test]
    fn the_key_travels_as_a_sensitive_bearer_header() {
        let headers = auth_headers(Some("rw_abc")).expect("a valid header");
        let value = &headers[reqwest::header::AUTHORIZATION];
        assert_eq!(value.to_str().ok(), Some("Bearer rw_abc"));
        assert!(value.is_sensitive());
        assert!(auth_headers(None).expect("no header").is_empty());
        assert!(auth_headers(Some("rw_bad\nkey")).is_err());
    }

    #[test]
    fn a_401_or_403_stops_the_run_with_advice() {
        let unauthorized = refused_access(reqwest::StatusCode::UNAUTHORIZED, false).expect("401");
        assert!(unauthorized.to_string().contains("--api-key"));
        assert!(refused_access(reqwest::StatusCode::FORBIDDEN, true).is_some());
        assert!(refused_access(reqwest::StatusCode::CONFLICT, true).is_none());
    }
}
