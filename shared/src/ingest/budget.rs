//! The ingest memory budget: request bodies, raw and decompressed, held at once across all requests.
//!
//! A request reserves bytes before it allocates them (its declared `Content-Length`, then each buffer growth
//! while reading or inflating) and gives them back when its buffers are dropped. A reservation that does not fit
//! is refused at once, never waited for: the request is answered 503 with `Retry-After` (or 413 when it alone
//! would need more than the whole budget), so a flood of bombs cannot make the process grow.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget, one per process (cloned into every request's state).
#[derive(Clone)]
pub struct MemoryBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverBudget {
    /// Other requests hold the rest of the budget: try again shortly.
    Busy,
    /// This request alone would need more than the whole budget.
    TooLarge(usize),
}

impl MemoryBudget {
    pub fn new(total: usize) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// An empty reservation to grow.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: None,
        }
    }

    /// Bytes reserved by all requests right now.
    pub fn in_use(&self) -> usize {
        self.total - self.bytes.available_permits()
    }
}

/// Bytes one request holds; released when dropped.
pub struct Reservation {
    budget: MemoryBudget,
    held: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.held
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Reserves `more` bytes on top of what is held, or refuses without waiting.
    pub fn grow(&mut self, more: usize) -> Result<(), OverBudget> {
        if more == 0 {
            return Ok(());
        }
        let wanted = self.bytes().saturating_add(more);
        if wanted > self.budget.total {
            return Err(OverBudget::TooLarge(self.budget.total));
        }
        let n = u32::try_from(more).map_err(|_| OverBudget::TooLarge(self.budget.total))?;
        let permit = self
            .budget
            .bytes
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| OverBudget::Busy)?;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }

    /// Holds at least `bytes` in total, growing if needed.
    pub fn ensure(&mut self, bytes: usize) -> Result<(), OverBudget> {
        self.grow(bytes.saturating_sub(self.bytes()))
    }

    /// Gives back `bytes` (a buffer that was dropped).
    pub fn release(&mut self, bytes: usize) {
        if let Some(held) = &mut self.held {
            drop(held.split(bytes.min(held.num_permits())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation();
        a.grow(60).unwrap();
        let mut b = budget.reservation();
        assert_eq!(b.grow(50), Err(OverBudget::Busy));
        b.grow(40).unwrap();
        assert_eq!(budget.in_use(), 100);
        a.release(30);
        assert_eq!((a.bytes(), budget.in_use()), (30, 70));
        b.ensure(60).unwrap();
        assert_eq!(b.bytes(), 60);
        drop(a);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_request_larger_than_the_whole_budget_is_too_large_not_busy() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation();
        a.grow(70).unwrap();
        assert_eq!(a.grow(31), Err(OverBudget::TooLarge(100)));
        assert_eq!(a.bytes(), 70, "a refused growth keeps what was held");
    }
}
