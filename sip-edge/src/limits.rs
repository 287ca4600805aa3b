//! Per-source rate limiting: a token bucket per IP address in a bounded table, sans-IO.
//!
//! IPv6 sources are grouped by /64 (one host usually owns a whole /64, so per-address
//! buckets would be free for it to multiply). When the table is full, buckets that have
//! refilled (idle long enough to be indistinguishable from a new one) are dropped first, then
//! the least recently seen; eviction works in batches so `allow` stays O(1) amortized.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use crate::Instant;

/// Rate-limiter settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second (sustained requests per second per source).
    pub per_second: f64,
    /// Bucket size (requests allowed in a burst).
    pub burst: f64,
    /// Most sources tracked at once.
    pub max_sources: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 50.0,
            burst: 100.0,
            max_sources: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets per source IP; see the module docs.
#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
}

/// The key a source is accounted under: the address, or its /64 for IPv6.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl RateLimiter {
    /// A limiter with these settings (`max_sources` at least 1; rates clamped to ≥ 0).
    pub fn new(cfg: RateLimit) -> RateLimiter {
        RateLimiter {
            cfg: RateLimit {
                per_second: cfg.per_second.max(0.0),
                burst: cfg.burst.max(0.0),
                max_sources: cfg.max_sources.max(1),
            },
            buckets: HashMap::new(),
        }
    }

    /// Number of sources currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Takes one token from `ip`'s bucket if there is one: true = let the message through.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = source_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.cfg.max_sources {
            self.evict(now);
        }
        let cfg = self.cfg;
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: cfg.burst,
            last: now,
        });
        // `now` older than the last call (clock skew between callers) adds nothing.
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * cfg.per_second).min(cfg.burst);
        b.last = b.last.max(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Time for an empty bucket to refill completely.
    fn refill_time(&self) -> Duration {
        if self.cfg.per_second > 0.0 {
            Duration::from_secs_f64((self.cfg.burst / self.cfg.per_second).min(1e9))
        } else {
            Duration::MAX
        }
    }

    /// Frees at least one slot, and about an eighth of the table, so the O(n) pass is paid
    /// once per n/8 new sources.
    fn evict(&mut self, now: Instant) {
        let refill = self.refill_time();
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < refill);
        let target = self.cfg.max_sources - (self.cfg.max_sources / 8).max(1);
        if self.buckets.len() <= target {
            return;
        }
        let excess = self.buckets.len() - target;
        let mut by_age: Vec<(Instant, IpAddr)> =
            self.buckets.iter().map(|(ip, b)| (b.last, *ip)).collect();
        by_age.select_nth_unstable(excess - 1);
        for (_, ip) in &by_age[..excess] {
            self.buckets.remove(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    fn limiter(per_second: f64, burst: f64, max_sources: usize) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_second,
            burst,
            max_sources,
        })
    }

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 5.0, 16);
        let a = ip(1);
        assert_eq!((0..8).filter(|_| l.allow(a, t0)).count(), 5, "the burst");
        // 100 ms later: one more token.
        let t = t0 + Duration::from_millis(100);
        assert!(l.allow(a, t));
        assert!(!l.allow(a, t));
        // Over 10 s at 20 attempts/s, about 10/s get through.
        let mut ok = 0;
        for i in 1..=200u64 {
            if l.allow(a, t + Duration::from_millis(50 * i)) {
                ok += 1;
            }
        }
        assert!((99..=101).contains(&ok), "{ok}");
        // Another source is independent.
        assert!(l.allow(ip(2), t));
    }

    #[test]
    fn refill_caps_at_burst_and_time_going_back_adds_nothing() {
        let t0 = Instant::now();
        let mut l = limiter(1.0, 3.0, 16);
        let a = ip(1);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..10).filter(|_| l.allow(a, later)).count(), 3);
        assert!(!l.allow(a, t0), "an older now refills nothing");
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        let t0 = Instant::now();
        let mut l = limiter(0.0, 2.0, 16);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.allow(a, t0) && l.allow(b, t0));
        assert!(!l.allow(a, t0), "same /64 shares the bucket");
        assert!(l.allow(c, t0));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(l.allow(mapped, t0) && l.allow("192.0.2.1".parse().unwrap(), t0));
        assert!(!l.allow(mapped, t0), "v4-mapped = the v4 address");
    }

    #[test]
    fn table_is_bounded_and_evicts_the_oldest() {
        let t0 = Instant::now();
        let mut l = limiter(0.001, 1.0, 1000);
        for n in 0..1000 {
            assert!(l.allow(ip(n), t0 + Duration::from_millis(u64::from(n))));
        }
        assert_eq!(l.tracked(), 1000);
        // A spoofing flood of new sources: the table never grows past its bound.
        for n in 1000..50_000 {
            l.allow(ip(n), t0 + Duration::from_secs(2));
            assert!(l.tracked() <= 1000);
        }
        // The oldest (first) sources were evicted, so they start over with a full bucket;
        // the most recent one is still tracked and empty.
        assert!(l.allow(ip(0), t0 + Duration::from_secs(2)));
        assert!(!l.allow(ip(49_999), t0 + Duration::from_secs(2)));
    }

    #[test]
    fn refilled_buckets_go_first() {
        let t0 = Instant::now();
        let mut l = limiter(1.0, 1.0, 4);
        // 0..3 seen long ago (refilled), 3 seen just now and empty.
        for n in 0..3 {
            l.allow(ip(n), t0);
        }
        let now = t0 + Duration::from_secs(10);
        assert!(l.allow(ip(3), now));
        assert!(l.allow(ip(9), now));
        // The active, empty bucket of 3 survived the eviction.
        assert!(!l.allow(ip(3), now));
    }
}
