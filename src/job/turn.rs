//! A job's place in line for a restore slot (`numikube_staging_max_restores`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// A place in line for a restore slot.
pub type Turn = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// Takes a place in line for a slot now. tokio's semaphore serves waiters
/// first come, first served, but a waiter is queued only when first polled:
/// polling once here, under the admission lock, makes the line the order of
/// admission rather than the order in which spawned tasks happen to run.
pub async fn take_turn(slots: &Arc<Semaphore>) -> Turn {
    let mut turn: Turn = Box::pin(slots.clone().acquire_owned());
    match futures::poll!(turn.as_mut()) {
        Poll::Ready(permit) => Box::pin(std::future::ready(permit)),
        Poll::Pending => turn,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn turns_are_served_in_the_order_they_were_taken() {
        let slots = Arc::new(Semaphore::new(1));
        let first = take_turn(&slots).await.await.unwrap();
        let second = take_turn(&slots).await;
        let third = take_turn(&slots).await;
        let gone = take_turn(&slots).await;
        drop(gone); // interrupted while queued
        let order = Arc::new(Mutex::new(Vec::new()));
        // The third is awaited first, yet the second is served first.
        let o = order.clone();
        let t3 = tokio::spawn(async move {
            let _p = third.await;
            o.lock().unwrap().push(3);
        });
        tokio::task::yield_now().await;
        let o = order.clone();
        let t2 = tokio::spawn(async move {
            let _p = second.await;
            o.lock().unwrap().push(2);
        });
        drop(first);
        t2.await.unwrap();
        t3.await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec![2, 3]);
        assert_eq!(slots.available_permits(), 1);
    }
}
