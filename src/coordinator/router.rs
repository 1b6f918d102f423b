//! Which platform a coordinated write goes to, as pure decisions over what the breakers allow
//! and what the health counters measured.

use std::time::Duration;

/// One of a coordinated table's two platforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// The `primary` location.
    Primary,
    /// The `fallback` location.
    Fallback,
}

impl Lane {
    /// The other lane.
    pub fn other(self) -> Lane {
        match self {
            Lane::Primary => Lane::Fallback,
            Lane::Fallback => Lane::Primary,
        }
    }

    /// `primary` / `fallback`.
    pub fn name(self) -> &'static str {
        match self {
            Lane::Primary => "primary",
            Lane::Fallback => "fallback",
        }
    }

    /// 0 for the primary, 1 for the fallback.
    pub fn index(self) -> usize {
        match self {
            Lane::Primary => 0,
            Lane::Fallback => 1,
        }
    }
}

/// How a coordinated table picks a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The primary whenever its breaker lets writes through, else the fallback.
    Failover,
    /// Of the platforms whose breakers let writes through, the one with the lower measured
    /// acknowledgement latency weighted by its error rate (the primary on a tie).
    Health,
}

/// What the router knows of one platform when it decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneView {
    /// Whether its breaker lets a write through now.
    pub allowed: bool,
    /// Median acknowledgement latency measured so far (`None`: nothing measured yet).
    pub p50: Option<Duration>,
    /// Failed share of recent writes (0–1).
    pub error_rate: f64,
}

impl LaneView {
    /// Lower is better: latency grows by ten times the error rate; unmeasured counts as 0.
    fn score(&self) -> f64 {
        let ms = self.p50.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        (ms + 0.001) * (1.0 + 10.0 * self.error_rate)
    }
}

/// The platform to write to next (`None`: neither breaker lets writes through).
pub fn choose(routing: Routing, primary: LaneView, fallback: LaneView) -> Option<Lane> {
    match (primary.allowed, fallback.allowed) {
        (false, false) => None,
        (true, false) => Some(Lane::Primary),
        (false, true) => Some(Lane::Fallback),
        (true, true) => match routing {
            Routing::Failover => Some(Lane::Primary),
            Routing::Health => {
                if fallback.score() < primary.score() {
                    Some(Lane::Fallback)
                } else {
                    Some(Lane::Primary)
                }
            }
        },
    }
}

/// After a retryable failure on `failed`: retry it while its breaker still lets writes through
/// and retries are left, else move to the other platform if its breaker allows, else give up
/// (`None`).
pub fn after_failure(
    failed: Lane,
    failed_allowed: bool,
    retries_left: bool,
    other_allowed: bool,
) -> Option<Lane> {
    if failed_allowed && retries_left {
        Some(failed)
    } else if other_allowed {
        Some(failed.other())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(allowed: bool, p50_ms: Option<u64>, error_rate: f64) -> LaneView {
        LaneView {
            allowed,
            p50: p50_ms.map(Duration::from_millis),
            error_rate,
        }
    }

    #[test]
    fn failover_routing_prefers_the_primary_while_it_is_allowed() {
        let fast = view(true, Some(1), 0.0);
        let slow = view(true, Some(50), 0.0);
        assert_eq!(choose(Routing::Failover, slow, fast), Some(Lane::Primary));
        assert_eq!(
            choose(Routing::Failover, view(false, None, 0.0), fast),
            Some(Lane::Fallback)
        );
        assert_eq!(
            choose(Routing::Failover, slow, view(false, None, 0.0)),
            Some(Lane::Primary)
        );
        assert_eq!(
            choose(
                Routing::Failover,
                view(false, None, 0.0),
                view(false, None, 0.0)
            ),
            None
        );
    }

    #[test]
    fn health_routing_picks_by_latency_and_errors_and_the_primary_on_a_tie() {
        let slow = view(true, Some(50), 0.0);
        let fast = view(true, Some(5), 0.0);
        assert_eq!(choose(Routing::Health, slow, fast), Some(Lane::Fallback));
        assert_eq!(choose(Routing::Health, fast, slow), Some(Lane::Primary));
        assert_eq!(choose(Routing::Health, fast, fast), Some(Lane::Primary));
        // 5 ms with half the writes failing scores worse than 20 ms without errors
        assert_eq!(
            choose(
                Routing::Health,
                view(true, Some(5), 0.5),
                view(true, Some(20), 0.0)
            ),
            Some(Lane::Fallback)
        );
        // nothing measured yet: tried first
        assert_eq!(
            choose(Routing::Health, slow, view(true, None, 0.0)),
            Some(Lane::Fallback)
        );
        assert_eq!(
            choose(Routing::Health, view(false, Some(1), 0.0), slow),
            Some(Lane::Fallback)
        );
    }

    #[test]
    fn a_failed_platform_is_retried_until_its_breaker_opens_then_the_other_takes_over() {
        assert_eq!(
            after_failure(Lane::Primary, true, true, true),
            Some(Lane::Primary)
        );
        assert_eq!(
            after_failure(Lane::Primary, false, true, true),
            Some(Lane::Fallback)
        );
        assert_eq!(
            after_failure(Lane::Primary, true, false, true),
            Some(Lane::Fallback)
        );
        assert_eq!(after_failure(Lane::Primary, false, true, false), None);
        assert_eq!(after_failure(Lane::Primary, true, false, false), None);
        assert_eq!(
            after_failure(Lane::Fallback, false, false, true),
            Some(Lane::Primary)
        );
        assert_eq!(
            after_failure(Lane::Fallback, true, true, false),
            Some(Lane::Fallback)
        );
    }
}
