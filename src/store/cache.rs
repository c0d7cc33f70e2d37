//! A process-wide cache of what never changes about a wallet: its currency and its owner.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::{Currency, WalletId};

/// A wallet's currency and owner: fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletFacts {
    pub currency: Currency,
    pub owner: Arc<str>,
}

/// Currencies and owners never change, so a process-wide cache lets an amount be parsed in the wallet's currency,
/// and an owner-bound key be checked, without a database round trip on the hot path. Ids are never reused
/// (identity / autoincrement).
#[derive(Debug, Default, Clone)]
pub(super) struct FactsCache(Arc<RwLock<HashMap<i64, WalletFacts>>>);

impl FactsCache {
    const MAX_ENTRIES: usize = 1_000_000;

    pub(super) fn get(&self, id: WalletId) -> Option<WalletFacts> {
        self.0.read().ok()?.get(&id.get()).cloned()
    }

    pub(super) fn put(&self, id: WalletId, facts: WalletFacts) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= Self::MAX_ENTRIES {
                map.clear();
            }
            map.insert(id.get(), facts);
        }
    }
}
