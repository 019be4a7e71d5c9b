//! Licences (L1-L6): kinds, ranks for substitution, purchases, withdrawals
//! and the licence report.

use super::ids::UserId;
use serde::{Deserialize, Serialize};

/// Devices in one device package (L1).
pub const DEVICES_PER_PACKAGE: u32 = 10;

/// What a licence seat is for (L2, L5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum LicenceKind {
    Voice,
    Chat,
    Email,
    Sms,
    Messaging,
    UcContactCard,
}

impl LicenceKind {
    /// Every kind.
    pub const ALL: [LicenceKind; 6] = [
        Self::Voice,
        Self::Chat,
        Self::Email,
        Self::Sms,
        Self::Messaging,
        Self::UcContactCard,
    ];
}

/// A kind's rank for substitution (L5): a needed kind may be served by a
/// free seat of a strictly higher rank; kinds without a rank never
/// substitute nor are substituted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LicenceRank {
    /// The kind.
    pub kind: LicenceKind,
    /// Its rank; higher serves lower.
    pub rank: u32,
}

/// The default ranks: an agent (voice) seat may stand in for a UC contact-card seat.
pub fn default_ranks() -> Vec<LicenceRank> {
    vec![
        LicenceRank {
            kind: LicenceKind::UcContactCard,
            rank: 1,
        },
        LicenceRank {
            kind: LicenceKind::Voice,
            rank: 2,
        },
    ]
}

/// A withdrawal (L3): accepted at once (its seats are reserved from then on),
/// billed until the end of the month it was requested in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Withdrawal {
    /// Kind.
    pub kind: LicenceKind,
    /// Seats.
    pub count: u32,
    /// When it was requested.
    pub requested_at_ms: u64,
    /// End of that billing month (UTC): when it leaves the bill.
    pub effective_at_ms: u64,
}

/// One line of the licence report per kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindReport {
    /// Kind.
    pub kind: LicenceKind,
    /// Seats bought, ever.
    pub purchased: u32,
    /// Seats withdrawn (pending and effective).
    pub withdrawn: u32,
    /// Of those, still billed until the end of their month.
    pub withdrawn_pending: u32,
    /// Seats that can be in use: purchased - withdrawn.
    pub pool: u32,
    /// Seats in use (assignments served by this kind).
    pub in_use: u32,
    /// pool - in_use.
    pub free: u32,
}

/// A seat served by a higher-ranked kind (L5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Substitution {
    /// The user.
    pub user: UserId,
    /// The kind the user needs.
    pub needed: LicenceKind,
    /// The kind that serves it.
    pub used: LicenceKind,
}

/// The licence report of a tenant (L1-L5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenceReport {
    /// Per kind.
    pub kinds: Vec<KindReport>,
    /// Seats served by a higher-ranked kind.
    pub substitutions: Vec<Substitution>,
    /// Current ranks.
    pub ranks: Vec<LicenceRank>,
    /// Device packages bought (net of withdrawals).
    pub device_packages: u32,
    /// Devices allowed: packages x 10.
    pub devices_allowed: u32,
    /// Devices that count against the packages.
    pub devices_in_use: u32,
}

/// Start of the next UTC month after `at_ms` (the end of its billing month).
pub fn end_of_billing_month_ms(at_ms: u64) -> u64 {
    let days = at_ms / 86_400_000;
    let (year, month) = civil_year_month(days);
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(next_year, next_month, 1) * 86_400_000
}

/// (year, month) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_year_month(days: u64) -> (u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_billing_month_ends_at_the_start_of_the_next_utc_month() {
        // 2026-11-22T12:00:00Z -> 2026-12-01T00:00:00Z
        assert_eq!(
            end_of_billing_month_ms(1_795_348_800_000),
            1_796_083_200_000
        );
        // 2026-12-31T23:59:59Z -> 2027-01-01T00:00:00Z
        assert_eq!(
            end_of_billing_month_ms(1_798_761_599_000),
            1_798_761_600_000
        );
        // 2028-02-10 (leap year) -> 2028-03-01
        assert_eq!(
            end_of_billing_month_ms(1_833_753_600_000),
            1_835_481_600_000
        );
    }
}
