//! `revwallet audit`: checks the ledger invariant of every wallet and names each broken one.

use crate::config::DatabaseArgs;
use crate::store::Store;

/// Returns the number of broken wallets after printing one line for each.
pub async fn audit(database: DatabaseArgs) -> anyhow::Result<usize> {
    let store = Store::connect(&database.url(), &database.store_options())?;
    let findings = store.audit().await?;
    for finding in &findings {
        let ledger = finding
            .ledger_balance
            .map_or("no ledger entries".to_owned(), |sum| {
                format!("ledger sums to {sum}")
            });
        let chain = finding
            .first_bad_entry
            .map(|id| format!("; entry {id} does not continue the previous balance"))
            .unwrap_or_default();
        println!(
            "wallet {}: balance {} (minor units), {ledger}{chain}",
            finding.wallet_id, finding.balance
        );
    }
    if findings.is_empty() {
        println!("audit clean: every balance matches its ledger");
    }
    store.close().await;
    Ok(findings.len())
}
