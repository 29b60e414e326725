//! Shards: one run split over several processes or machines. Shard K of N runs the clients of every
//! group whose index in the group is K modulo N, under the ids the whole run gives them, so stamps,
//! gap tracking and frame-log samples mean the same in every shard. Shards of one run share a run id
//! (`--run-id`, so they accept each other's stamps) and a time zero (`--start-at`, so a stamp's
//! origin means the same instant everywhere).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::scenario::Plan;

/// `--shard K/N`: this process runs shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the client at `index_in_group` (from 0) of its group belongs to this shard.
    pub fn takes(&self, index_in_group: u64) -> bool {
        index_in_group % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of `group_clients` clients this shard runs.
    pub fn share_of(&self, group_clients: u64) -> u64 {
        let (count, index) = (u64::from(self.count), u64::from(self.index));
        group_clients / count + u64::from(group_clients % count > index)
    }

    /// How many clients of the whole plan this shard runs.
    pub fn clients_of(&self, plan: &Plan) -> u64 {
        plan.groups.iter().map(|g| self.share_of(g.clients)).sum()
    }

    /// How many clients of the fixed-size groups (the ramp's) this shard runs.
    pub fn fixed_of(&self, plan: &Plan) -> u64 {
        let fixed = plan.groups.iter().filter(|g| g.arrivals.is_none());
        fixed.map(|g| self.share_of(g.clients)).sum()
    }

    /// How many of this shard's clients are connected at once at most.
    pub fn peak_of(&self, plan: &Plan) -> u64 {
        plan.groups
            .iter()
            .map(|g| self.share_of(g.peak_clients()))
            .sum()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let usage = || format!("`{s}` is not a shard: expected K/N with 0 <= K < N, e.g. 0/4");
        let (k, n) = s.split_once('/').ok_or_else(usage)?;
        let index: u32 = k.trim().parse().map_err(|_| usage())?;
        let count: u32 = n.trim().parse().map_err(|_| usage())?;
        if count == 0 || index >= count {
            return Err(format!(
                "`{s}`: shard K/N needs 0 <= K < N (shards are numbered from 0), e.g. 0/{}",
                count.max(1)
            ));
        }
        Ok(Shard { index, count })
    }
}

/// `--run-id HEX`: the run id (stamps carry it; shards of one run must share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId(pub u32);

impl FromStr for RunId {
    type Err = String;

    fn from_str(s: &str) -> Result<RunId, String> {
        let hex = s.trim();
        if hex.is_empty() || hex.len() > 8 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{s}` is not a run id: expected 1 to 8 hex digits, as run.json's run_id (e.g. 89a567a9)"
            ));
        }
        u32::from_str_radix(hex, 16)
            .map(RunId)
            .map_err(|e| e.to_string())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// `--start-at TIME`: the wall-clock instant that is the run's time zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt(pub SystemTime);

impl FromStr for StartAt {
    type Err = String;

    fn from_str(s: &str) -> Result<StartAt, String> {
        let text = s.trim();
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
            let secs: f64 = text
                .parse()
                .map_err(|_| format!("`{s}` is not a time: unix seconds like 1764490000.5"))?;
            return Duration::try_from_secs_f64(secs)
                .map(|d| StartAt(UNIX_EPOCH + d))
                .map_err(|e| e.to_string());
        }
        humantime::parse_rfc3339_weak(text)
            .map(StartAt)
            .map_err(|_| {
                format!(
                    "`{s}` is not a time: expected RFC 3339 (2026-11-30T10:00:00Z) or unix seconds (1764496800)"
                )
            })
    }
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

/// How far in the past `--start-at` may be and still start (at once, keeping that time zero).
pub const START_AT_SLACK: Duration = Duration::from_secs(1);

/// The run's time zero for `--start-at`: the instant on the monotonic clock that corresponds to
/// `start_at`, given that `now_instant` and `now_wall` are the same moment. A time more than
/// [`START_AT_SLACK`] in the past is refused with how late it is.
pub fn time_zero(
    start_at: SystemTime,
    now_wall: SystemTime,
    now_instant: Instant,
) -> Result<Instant, Duration> {
    match start_at.duration_since(now_wall) {
        Ok(ahead) => Ok(now_instant + ahead),
        Err(past) => {
            let late = past.duration();
            if late > START_AT_SLACK {
                return Err(late);
            }
            Ok(now_instant.checked_sub(late).unwrap_or(now_instant))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_every_group_and_together_cover_it_once() {
        for count in 1..=7u32 {
            for clients in [0u64, 1, 2, 5, 10, 1001] {
                let mut covered = vec![0; clients as usize];
                let mut total = 0;
                for index in 0..count {
                    let shard = Shard { index, count };
                    let taken: Vec<u64> = (0..clients).filter(|&i| shard.takes(i)).collect();
                    assert_eq!(taken.len() as u64, shard.share_of(clients));
                    for i in taken {
                        covered[i as usize] += 1;
                    }
                    total += shard.share_of(clients);
                }
                assert_eq!(total, clients);
                assert!(covered.iter().all(|&c| c == 1));
            }
        }
    }

    #[test]
    fn shard_specs_parse_and_bad_ones_say_the_format() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("K/N"), "{bad}: {err}");
        }
    }

    #[test]
    fn run_ids_are_hex_of_at_most_8_digits() {
        assert_eq!("89a567a9".parse::<RunId>().unwrap(), RunId(0x89a5_67a9));
        assert_eq!(RunId(0xab).to_string(), "000000ab");
        for bad in ["", "123456789", "xyz"] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn start_at_takes_rfc3339_or_unix_seconds() {
        let at = UNIX_EPOCH + Duration::from_secs(1_764_496_800);
        assert_eq!("1764496800".parse::<StartAt>().unwrap().0, at);
        assert_eq!(
            "1764496800.5".parse::<StartAt>().unwrap().0,
            at + Duration::from_millis(500)
        );
        assert_eq!("2025-11-30T10:00:00Z".parse::<StartAt>().unwrap().0, at);
        let err = "tomorrow".parse::<StartAt>().unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn time_zero_is_ahead_slightly_behind_or_refused() {
        let (wall, now) = (UNIX_EPOCH + Duration::from_secs(1000), Instant::now());
        let ahead = time_zero(wall + Duration::from_secs(5), wall, now).unwrap();
        assert_eq!(ahead, now + Duration::from_secs(5));
        let behind = time_zero(wall - Duration::from_millis(300), wall, now).unwrap();
        assert!(behind <= now);
        let late = time_zero(wall - Duration::from_secs(3), wall, now).unwrap_err();
        assert_eq!(late, Duration::from_secs(3));
    }
}
