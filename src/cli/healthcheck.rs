//! `revwallet healthcheck`: for container health checks, which have no curl in a small image.

use std::time::Duration;

pub async fn healthcheck(url: &str) -> bool {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(client) => client,
        Err(_) => return false,
    };
    match client.get(url).send().await {
        Ok(response) if response.status().is_success() => true,
        Ok(response) => {
            eprintln!("{url} answered {}", response.status());
            false
        }
        Err(error) => {
            eprintln!("{url}: {error}");
            false
        }
    }
}
