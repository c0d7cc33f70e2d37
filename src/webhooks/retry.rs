//! When a failed delivery is tried again: exponential backoff with jitter, for at least the give-up window.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The nominal wait before the first retry (the actual wait is between half of it and all of it).
    pub first: Duration,
    /// The longest nominal wait between two attempts.
    pub max: Duration,
    /// A delivery whose attempt fails when it is this old is given up (marked `failed`).
    pub give_up_after: Duration,
}

impl Default for RetrySchedule {
    /// The first retry within 5 s (at most 10 s), then doubling up to an hour, for 24 hours.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetrySchedule {
    /// The nominal wait after `failed` attempts (1 after the first): `first · 2^(failed−1)`, at most `max`.
    pub fn nominal(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(30);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }

    /// The wait with jitter: `jitter` in [0, 1) picks a point between half the nominal wait and all of it, so
    /// receivers that failed together are not retried in lockstep.
    pub fn delay(&self, failed: u32, jitter: f64) -> Duration {
        let nominal = self.nominal(failed);
        nominal.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// After a failed attempt of a delivery `age` old: the wait before the next attempt, or `None` to give up.
    pub fn after_failure(&self, failed: u32, age: Duration, jitter: f64) -> Option<Duration> {
        (age < self.give_up_after).then(|| self.delay(failed, jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the schedule from a delivery's creation (attempts themselves take no time) until it gives up.
    fn run(schedule: &RetrySchedule, jitter: f64) -> (u32, Duration) {
        let mut age = Duration::ZERO;
        let mut failed = 1;
        while let Some(wait) = schedule.after_failure(failed, age, jitter) {
            age += wait;
            failed += 1;
            assert!(failed < 1000, "the schedule never gives up");
        }
        (failed, age)
    }

    #[test]
    fn the_first_retry_comes_within_ten_seconds() {
        let schedule = RetrySchedule::default();
        for jitter in [0.0, 0.5, 0.999] {
            let wait = schedule.delay(1, jitter);
            assert!(
                wait <= Duration::from_secs(10) && wait > Duration::ZERO,
                "{wait:?}"
            );
        }
    }

    #[test]
    fn retries_cover_at_least_a_day_and_then_stop() {
        let schedule = RetrySchedule::default();
        for jitter in [0.0, 0.999] {
            let (attempts, age) = run(&schedule, jitter);
            assert!(age >= Duration::from_secs(24 * 3600), "{age:?}");
            // Bounded: the last wait is at most `max` past the window.
            assert!(age < Duration::from_secs(25 * 3600), "{age:?}");
            assert!((20..100).contains(&attempts), "{attempts}");
        }
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_the_jitter_stays_within_half_of_it() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.nominal(1), Duration::from_secs(5));
        assert_eq!(schedule.nominal(2), Duration::from_secs(10));
        assert_eq!(schedule.nominal(5), Duration::from_secs(80));
        assert_eq!(schedule.nominal(40), Duration::from_secs(3600));
        assert_eq!(schedule.nominal(u32::MAX), Duration::from_secs(3600));
        for failed in [1, 3, 10, 40] {
            let nominal = schedule.nominal(failed);
            for jitter in [-1.0, 0.0, 0.3, 0.999, 2.0] {
                let wait = schedule.delay(failed, jitter);
                assert!(
                    wait >= nominal / 2 && wait <= nominal,
                    "{failed} {jitter}: {wait:?}"
                );
            }
        }
    }

    #[test]
    fn a_delivery_past_the_window_is_given_up() {
        let schedule = RetrySchedule::default();
        assert_eq!(
            schedule.after_failure(3, Duration::from_secs(24 * 3600), 0.5),
            None
        );
        assert!(
            schedule
                .after_failure(3, Duration::from_secs(24 * 3600 - 1), 0.5)
                .is_some()
        );
    }
}
