//! Process-wide caches of what never changes: a wallet's currency and owner, a pending hold's wallet and amount.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use super::Hold;
use crate::domain::{Amount, Currency, HoldId, WalletId};

/// A wallet's currency and owner: fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletFacts {
    pub currency: Currency,
    pub owner: Arc<str>,
}

/// A hold's wallet and the amount it reserved: fixed when it is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldFacts {
    pub wallet_id: WalletId,
    pub amount: Amount,
}

impl From<&Hold> for HoldFacts {
    fn from(hold: &Hold) -> Self {
        Self {
            wallet_id: hold.wallet_id,
            amount: hold.amount,
        }
    }
}

/// Currencies and owners never change, so a process-wide cache lets an amount be parsed in the wallet's currency,
/// and an owner-bound key be checked, without a database round trip on the hot path. Ids are never reused
/// (identity / autoincrement).
pub(super) type FactsCache = FixedFacts<WalletId, WalletFacts, 1_000_000>;

/// The facts of holds this process placed or read while pending, so that capturing or voiding one checks the
/// caller's access and the amount without a database round trip first. Only what never changes is kept: the
/// hold's status is for the capture or void itself to find (a finished hold refuses it there, explained as
/// before). A hold leaves when this process finished it.
pub(super) type HoldsCache = FixedFacts<HoldId, HoldFacts, 100_000>;

/// What never changes about an id, for at most `MAX` ids: the map starts over when full, which bounds memory.
#[derive(Debug, Clone)]
pub(super) struct FixedFacts<K, V, const MAX: usize>(Arc<RwLock<HashMap<K, V>>>);

impl<K, V, const MAX: usize> Default for FixedFacts<K, V, MAX> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<K: Eq + Hash, V: Clone, const MAX: usize> FixedFacts<K, V, MAX> {
    pub(super) fn get(&self, id: K) -> Option<V> {
        self.0.read().ok()?.get(&id).cloned()
    }

    pub(super) fn put(&self, id: K, facts: V) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= MAX {
                map.clear();
            }
            map.insert(id, facts);
        }
    }

    pub(super) fn forget(&self, id: K) {
        if let Ok(mut map) = self.0.write() {
            map.remove(&id);
        }
    }
}
