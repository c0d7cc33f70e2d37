//! A process-wide cache of wallet currencies.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::{Currency, WalletId};

/// Wallet currencies never change, so a process-wide cache lets an amount be parsed in the wallet's currency
/// without a database round trip on the hot path. Ids are never reused (identity / autoincrement).
#[derive(Debug, Default, Clone)]
pub(super) struct CurrencyCache(Arc<RwLock<HashMap<i64, Currency>>>);

impl CurrencyCache {
    const MAX_ENTRIES: usize = 1_000_000;

    pub(super) fn get(&self, id: WalletId) -> Option<Currency> {
        self.0.read().ok()?.get(&id.get()).copied()
    }

    pub(super) fn put(&self, id: WalletId, currency: Currency) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= Self::MAX_ENTRIES {
                map.clear();
            }
            map.insert(id.get(), currency);
        }
    }
}
