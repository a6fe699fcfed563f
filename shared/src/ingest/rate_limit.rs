//! The per-project quota of accepted events per minute (off unless a project sets one). A fixed one-minute
//! window per process: in AWS each ingest instance counts on its own, so the quota is approximate there.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::protocol::ProjectId;

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<ProjectId, (i64, i64)>>,
}

impl RateLimiter {
    /// Counts one event at `now_secs`; `Err(retry_after_secs)` when the project is over `limit`.
    pub fn check(&self, project: ProjectId, limit: i64, now_secs: i64) -> Result<(), u64> {
        let minute = now_secs.div_euclid(60);
        let mut windows = self.windows.lock().expect("poisoned");
        let (window, count) = windows.entry(project).or_insert((minute, 0));
        if *window != minute {
            (*window, *count) = (minute, 0);
        }
        if *count >= limit {
            return Err((60 - now_secs.rem_euclid(60)) as u64);
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_resets_each_minute() {
        let rl = RateLimiter::default();
        let p = ProjectId::new(1);
        assert!(rl.check(p, 2, 120).is_ok());
        assert!(rl.check(p, 2, 130).is_ok());
        assert_eq!(rl.check(p, 2, 150), Err(30));
        assert!(rl.check(ProjectId::new(2), 2, 150).is_ok());
        assert!(rl.check(p, 2, 180).is_ok());
    }
}
