//! The circuit breaker of one platform, as a pure state machine: events and the time they
//! happen go in (`now`, from an injected clock), states and decisions come out.
//!
//! Closed → open after `failures` consecutive retryable failures; open → half-open once
//! `open_for` has passed (the next [`CircuitBreaker::allows`] call); half-open → closed after
//! `probes` successes in a row, or back to open on a failure.

use std::fmt;
use std::time::Duration;

/// When a breaker opens and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive retryable failures that open a closed breaker (at least 1).
    pub failures: u32,
    /// How long an open breaker stays open before it lets a probe through.
    pub open_for: Duration,
    /// Successful probes in a row that close a half-open breaker (at least 1).
    pub probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 3,
            open_for: Duration::from_secs(5),
            probes: 2,
        }
    }
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Writes go through.
    Closed,
    /// Writes are refused until the open time has passed.
    Open,
    /// Writes go through as probes; their outcome closes or re-opens the breaker.
    HalfOpen,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// A change of state: when (clock time) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// Clock time of the change.
    pub at: Duration,
    /// What caused it (the error, or "open time passed", "probes succeeded").
    pub reason: String,
}

/// The breaker of one platform.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    /// Retryable failures in a row (reset by a success).
    consecutive_failures: u32,
    /// Successful probes in a row while half-open.
    probe_successes: u32,
    /// When the breaker last opened.
    opened_at: Duration,
    last: Option<Transition>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config: BreakerConfig {
                failures: config.failures.max(1),
                probes: config.probes.max(1),
                ..config
            },
            state: BreakerState::Closed,
            consecutive_failures: 0,
            probe_successes: 0,
            opened_at: Duration::ZERO,
            last: None,
        }
    }

    /// The state as of the last event (an open breaker whose time has passed still says open
    /// until [`CircuitBreaker::allows`] is asked).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Retryable failures in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The last change of state.
    pub fn last_transition(&self) -> Option<&Transition> {
        self.last.as_ref()
    }

    /// Whether a write may go to this platform at `now`; an open breaker whose open time has
    /// passed becomes half-open and lets it through as a probe.
    pub fn allows(&mut self, now: Duration) -> bool {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => true,
            BreakerState::Open => {
                if now.saturating_sub(self.opened_at) >= self.config.open_for {
                    self.probe_successes = 0;
                    self.go(BreakerState::HalfOpen, now, "open time passed".into());
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Whether [`CircuitBreaker::allows`] would let a write through at `now`, without changing
    /// anything.
    pub fn would_allow(&self, now: Duration) -> bool {
        self.state != BreakerState::Open
            || now.saturating_sub(self.opened_at) >= self.config.open_for
    }

    /// A write was acknowledged at `now`.
    pub fn record_success(&mut self, now: Duration) {
        self.consecutive_failures = 0;
        if self.state == BreakerState::HalfOpen {
            self.probe_successes += 1;
            if self.probe_successes >= self.config.probes {
                let reason = format!("{} probe(s) succeeded", self.probe_successes);
                self.go(BreakerState::Closed, now, reason);
            }
        }
    }

    /// A write failed at `now` with a retryable error (`reason`). Returns whether the breaker
    /// is open now.
    pub fn record_failure(&mut self, now: Duration, reason: &str) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            BreakerState::Closed if self.consecutive_failures >= self.config.failures => {
                self.opened_at = now;
                let reason = format!(
                    "{} failure(s) in a row: {reason}",
                    self.consecutive_failures
                );
                self.go(BreakerState::Open, now, reason);
            }
            BreakerState::HalfOpen => {
                self.opened_at = now;
                self.go(BreakerState::Open, now, format!("probe failed: {reason}"));
            }
            // an open breaker stays open from when it opened
            _ => {}
        }
        self.state == BreakerState::Open
    }

    fn go(&mut self, to: BreakerState, at: Duration, reason: String) {
        self.last = Some(Transition {
            from: self.state,
            to,
            at,
            reason,
        });
        self.state = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failures: 3,
            open_for: ms(1000),
            probes: 2,
        })
    }

    #[test]
    fn a_closed_breaker_opens_after_n_failures_in_a_row_only() {
        let mut b = breaker();
        assert!(!b.record_failure(ms(0), "e"));
        assert!(!b.record_failure(ms(1), "e"));
        // a success in between starts the count again
        b.record_success(ms(2));
        assert_eq!(b.consecutive_failures(), 0);
        assert!(!b.record_failure(ms(3), "e"));
        assert!(!b.record_failure(ms(4), "e"));
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.record_failure(ms(5), "connection refused"));
        assert_eq!(b.state(), BreakerState::Open);
        let t = b.last_transition().unwrap();
        assert_eq!(
            (t.from, t.to, t.at),
            (BreakerState::Closed, BreakerState::Open, ms(5))
        );
        assert!(
            t.reason
                .contains("3 failure(s) in a row: connection refused"),
            "{}",
            t.reason
        );
    }

    #[test]
    fn an_open_breaker_refuses_until_exactly_its_open_time_has_passed() {
        let mut b = breaker();
        for i in 0..3 {
            b.record_failure(ms(100 + i), "e");
        }
        // opened at 102
        assert!(!b.allows(ms(102)));
        assert!(!b.would_allow(ms(1101)));
        assert!(!b.allows(ms(1101)));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.would_allow(ms(1102)));
        assert_eq!(b.state(), BreakerState::Open, "would_allow changes nothing");
        assert!(b.allows(ms(1102)));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.last_transition().unwrap().reason, "open time passed");
    }

    #[test]
    fn failures_while_open_do_not_extend_the_open_time() {
        let mut b = breaker();
        for i in 0..3 {
            b.record_failure(ms(i), "e");
        }
        assert!(b.record_failure(ms(900), "e"));
        assert!(b.allows(ms(1002)));
    }

    #[test]
    fn a_half_open_breaker_closes_after_m_probes_in_a_row() {
        let mut b = breaker();
        for i in 0..3 {
            b.record_failure(ms(i), "e");
        }
        assert!(b.allows(ms(5000)));
        b.record_success(ms(5001));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record_success(ms(5002));
        assert_eq!(b.state(), BreakerState::Closed);
        let t = b.last_transition().unwrap();
        assert_eq!(
            (t.from, t.to, t.at),
            (BreakerState::HalfOpen, BreakerState::Closed, ms(5002))
        );
        // closed again: it takes N failures to open it once more
        assert!(!b.record_failure(ms(5003), "e"));
    }

    #[test]
    fn a_failed_probe_opens_the_breaker_again_from_that_moment() {
        let mut b = breaker();
        for i in 0..3 {
            b.record_failure(ms(i), "e");
        }
        assert!(b.allows(ms(2000)));
        b.record_success(ms(2001));
        assert!(b.record_failure(ms(2002), "timeout"));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(
            b.last_transition()
                .unwrap()
                .reason
                .contains("probe failed: timeout")
        );
        assert!(!b.allows(ms(3001)));
        assert!(b.allows(ms(3002)));
        // the earlier probe success does not count toward closing
        b.record_success(ms(3003));
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn zero_thresholds_mean_one() {
        let mut b = CircuitBreaker::new(BreakerConfig {
            failures: 0,
            open_for: Duration::ZERO,
            probes: 0,
        });
        assert!(b.record_failure(ms(0), "e"));
        assert!(b.allows(ms(0)));
        b.record_success(ms(0));
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
