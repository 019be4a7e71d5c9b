use super::*;

const A: &str = "203.0.113.7";
const B: &str = "198.51.100.9";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn rules() -> ThrottleRules {
    ThrottleRules {
        capacity: 1_000,
        ..ThrottleRules::default()
    }
}

/// One step of a throttling table: at `at_ms`, `login` from `source`
/// tries; `wrong` says whether its password is wrong (when it may try);
/// `expect` is the verdict's wait (0: allowed), `lock` the lockout asked.
struct Step {
    at_ms: u64,
    login: &'static str,
    source: &'static str,
    wrong: bool,
    expect_wait_ms: u64,
    lock: Option<u64>,
}

fn step(
    at_ms: u64,
    login: &'static str,
    source: &'static str,
    wrong: bool,
    expect_wait_ms: u64,
    lock: Option<u64>,
) -> Step {
    Step {
        at_ms,
        login,
        source,
        wrong,
        expect_wait_ms,
        lock,
    }
}

fn run(steps: &[Step]) {
    let mut t = Throttle::new(rules());
    for (i, s) in steps.iter().enumerate() {
        let verdict = t.admit(s.login, ip(s.source), s.at_ms);
        let wait = match verdict {
            Verdict::Allowed => 0,
            Verdict::Wait { retry_after_ms } => retry_after_ms,
        };
        assert_eq!(wait, s.expect_wait_ms, "step {i}: wait");
        if verdict != Verdict::Allowed {
            continue;
        }
        if s.wrong {
            let failed = t.failed(s.login, ip(s.source), s.at_ms);
            assert_eq!(failed.lock_until_ms, s.lock, "step {i}: lockout");
        } else {
            t.succeeded(s.login, ip(s.source));
        }
    }
}

#[test]
fn three_free_failures_then_doubling_delays_per_pair() {
    run(&[
        step(0, "admin", A, true, 0, None),
        step(10, "admin", A, true, 0, None),
        step(20, "admin", A, true, 0, None),
        // Three failures: the next waits 1 s after the last.
        step(30, "admin", A, true, 990, None),
        step(1_020, "admin", A, true, 0, None),
        // Four: 2 s.
        step(1_030, "admin", A, true, 1_990, None),
        step(3_020, "admin", A, true, 0, None),
        // Five: 4 s; the same login from elsewhere is not slowed.
        step(3_030, "admin", B, false, 0, None),
        step(3_040, "admin", A, false, 3_980, None),
        step(7_020, "admin", A, false, 0, None),
        // The success cleared the pair.
        step(7_030, "admin", A, true, 0, None),
    ]);
}

#[test]
fn ten_failures_of_a_login_from_anywhere_lock_it() {
    let mut steps = Vec::new();
    // Three sources, a few failures each: no pair reaches a long delay.
    let sources = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"];
    for i in 0..9u64 {
        steps.push(step(
            i * 10,
            "owner",
            sources[(i % 4) as usize],
            true,
            0,
            None,
        ));
    }
    steps.push(step(
        100,
        "owner",
        "192.0.2.5",
        true,
        0,
        Some(100 + 15 * 60_000),
    ));
    // The lockout's own count starts afresh.
    steps.push(step(110, "owner", "192.0.2.6", true, 0, None));
    run(&steps);
}

#[test]
fn failures_are_forgotten_after_the_window() {
    let window = rules().window_ms;
    run(&[
        step(0, "a", A, true, 0, None),
        step(1, "a", A, true, 0, None),
        step(2, "a", A, true, 0, None),
        step(3, "a", A, true, 999, None),
        step(2 + window + 1, "a", A, true, 0, None),
        step(2 + window + 2, "a", A, true, 0, None),
    ]);
}

#[test]
fn a_source_spraying_many_logins_is_slowed_by_its_own_count() {
    let mut t = Throttle::new(rules());
    let source = ip(A);
    for i in 0..20u64 {
        assert_eq!(t.check(&format!("user{i}"), source, i), Verdict::Allowed);
        t.failed(&format!("user{i}"), source, i);
    }
    assert_eq!(
        t.check("user-new", source, 20),
        Verdict::Wait {
            retry_after_ms: 999
        }
    );
    assert_eq!(t.check("user-new", ip(B), 20), Verdict::Allowed);
}

#[test]
fn logins_are_counted_case_folded() {
    run(&[
        step(0, "Admin", A, true, 0, None),
        step(1, "ADMIN", A, true, 0, None),
        step(2, "admin", A, true, 0, None),
        step(3, "aDmIn", A, true, 999, None),
    ]);
}

#[test]
fn delays_stop_at_the_longest() {
    let mut t = Throttle::new(rules());
    for i in 0..40u64 {
        t.failed("x", ip(A), i * 100_000);
    }
    // 100 s apart: each within the window of the last, so the count grows;
    // the wait does not pass the cap.
    match t.check("x", ip(A), 3_900_000) {
        Verdict::Wait { retry_after_ms } => assert_eq!(retry_after_ms, 60_000),
        Verdict::Allowed => panic!("40 failures within the window wait"),
    }
}

#[test]
fn a_spray_of_100000_random_logins_keeps_every_table_bounded() {
    let mut t = Throttle::new(ThrottleRules {
        capacity: 4_096,
        ..ThrottleRules::default()
    });
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..100_000u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let source = IpAddr::from(((seed >> 32) as u32).to_be_bytes());
        t.failed(&format!("{seed:x}"), source, i);
    }
    t.check_invariants();
    assert!(t.entries() <= 3 * 4_096, "{}", t.entries());
    // The newest keys are the ones kept.
    assert!(t
        .logins
        .get(&format!("{seed:x}"), 100_000, u64::MAX)
        .is_some());
}

#[test]
fn an_unlock_clears_the_login_everywhere() {
    let mut t = Throttle::new(rules());
    for i in 0..5 {
        t.failed("owner", ip(A), i);
    }
    assert!(matches!(t.check("owner", ip(A), 10), Verdict::Wait { .. }));
    t.unlocked("OWNER");
    assert_eq!(t.check("owner", ip(A), 10), Verdict::Allowed);
}

#[test]
fn attempts_sent_together_when_a_delay_ends_are_one_password_check() {
    let mut t = Throttle::new(rules());
    let a = ip(A);
    for at in [0, 10, 20] {
        assert_eq!(t.admit("admin", a, at), Verdict::Allowed);
        t.failed("admin", a, at);
    }
    assert_eq!(
        t.admit("admin", a, 1_020),
        Verdict::Allowed,
        "the delay ended"
    );
    for _ in 0..15 {
        assert_eq!(
            t.admit("admin", a, 1_020),
            Verdict::Wait {
                retry_after_ms: 1_000
            },
            "the others sent at the same instant wait a new delay"
        );
    }
    t.failed("admin", a, 1_030);
    assert_eq!(
        t.admit("admin", a, 1_031),
        Verdict::Wait {
            retry_after_ms: 1_999
        }
    );
}
