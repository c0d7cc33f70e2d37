//! `revwallet audit`: checks the ledger invariant of every wallet, and its `held` against its pending holds, and
//! names each broken one.

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
        let held = if finding.held != finding.pending_holds || finding.held > finding.balance {
            format!(
                "; held {} but its pending holds sum to {}{}",
                finding.held,
                finding.pending_holds,
                if finding.held > finding.balance {
                    " (more than the balance)"
                } else {
                    ""
                }
            )
        } else {
            String::new()
        };
        println!(
            "wallet {}: balance {} (minor units), {ledger}{chain}{held}",
            finding.wallet_id, finding.balance
        );
    }
    if findings.is_empty() {
        println!(
            "audit clean: every balance matches its ledger and every held amount its pending holds"
        );
    }
    store.close().await;
    Ok(findings.len())
}
