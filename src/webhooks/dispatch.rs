//! The dispatcher: reads the event feed after the durable cursor and creates the deliveries of the webhooks that
//! want each event in the transaction that advances the cursor (compare-and-set: with several replicas, one wins
//! each batch and the others find the cursor moved and change nothing).

use super::Feed;
use crate::store::{Result, Store};

/// Events read per round: the dispatcher goes on while a batch comes back full.
pub const BATCH: u32 = 500;

pub async fn dispatch(store: &Store, feed: &Feed) -> Result<usize> {
    // Without webhooks (the usual case) the feed is not even read.
    if store
        .skip_unwatched_events(store.dispatch_position().await?)
        .await?
    {
        return Ok(0);
    }
    let mut dispatched = 0;
    loop {
        let from = store.dispatch_position().await?;
        let items = feed(from, BATCH).await?;
        let Some(to) = items.last().map(|item| item.event_id) else {
            return Ok(dispatched);
        };
        if !store.fan_out(from, to, &items).await? {
            // Another replica dispatched this batch.
            return Ok(dispatched);
        }
        dispatched += items.len();
        if items.len() < BATCH as usize {
            return Ok(dispatched);
        }
    }
}
