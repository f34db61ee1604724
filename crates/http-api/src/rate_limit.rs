//! Rate limits per credential and operation.
//!
//! Each (credential, method, route template) pair has its own token bucket
//! (GCRA): `per_second` requests on average with bursts of up to `burst`.
//! Over the limit a request answers 429 `TooManyRequestsException` with
//! `Retry-After`. Buckets live in this process: with several instances behind
//! a load balancer each instance counts on its own.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The configured limits; `per_second == 0` turns limiting off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            per_second: 100,
            burst: 200,
        }
    }
}

/// The buckets of every credential and operation.
pub struct RateLimits {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        let limiter = NonZeroU32::new(settings.per_second).map(|per_second| {
            let burst = NonZeroU32::new(settings.burst.max(1)).unwrap_or(per_second);
            RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
        });
        RateLimits {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from the bucket; `Err(wait)` when it is empty.
    pub fn check(&self, credential: &str, method: &str, route: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&format!("{credential} {method} {route}"))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets buckets that are full again, so idle credentials cost no memory.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
