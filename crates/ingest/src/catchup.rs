//! The consumer's start-up catch-up: the messages that were already in
//! Kafka when this consumer started consuming (the *backlog*) are history,
//! not delay. Their ingested − Kafka time is their age (28 minutes for the
//! demo's history), so they must not feed the steady-state consumer lag
//! that the thresholds watch; the catch-up is reported apart, as calm
//! information (how many, how long, the oldest age).
//!
//! What counts as backlog, and why offsets rather than timestamps: for the
//! partitions of the consumer's first assignment, the offsets below the
//! partition's high watermark read in the rebalance callback, before any
//! message of the assignment is handed out. Offsets say exactly what was
//! in the log; a Kafka timestamp is whatever the producer stamped
//! (`CreateTime` can be back-dated by a replay or MirrorMaker, or skewed by
//! the producer's clock), so "timestamp before our start" would misfile
//! messages both ways. It also tells how many messages are left ("N
//! behind"), which a timestamp cannot. The cost is one `ListOffsets` per
//! partition and one `OffsetFetch`, once per process.
//!
//! Only the first assignment gets watermarks. A partition assigned later
//! (a rebalance handing over a stopped replica's partitions, a topic that
//! appeared and matches a `^regex`) counts as backlog only the messages
//! stamped before this consumer started consuming: whatever waited there
//! since is real lag, and stays visible as such. A partition assigned
//! again (eager rebalances revoke and re-assign everything) keeps its
//! boundary. If the watermark cannot be read, the same timestamp rule
//! stands in. A restart is a new process: its catch-up is reported the
//! same way, and each replica reports its own.

use std::collections::BTreeMap;

use sagascope_domain::KafkaCoords;
use sagascope_model::{CatchUpState, IngestCatchUp, Timestamp};

/// How long an assigned partition may deliver nothing, while the consumer
/// has nothing else to read, before its catch-up counts as done although
/// its offsets never reached the high watermark (the last offsets of a
/// compacted or transactional partition need not be messages).
pub const QUIET: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// Where a partition's backlog ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacklogEnd {
    /// Offsets below this (the high watermark at the first assignment).
    Offset(i64),
    /// Messages with a Kafka timestamp before this instant (when the
    /// consumer started consuming), up to the first one that is not; from
    /// then on the partition's boundary is that message's offset.
    Before(Timestamp),
}

/// What the rebalance callback read of one partition of the first
/// assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMarks {
    pub topic: String,
    pub partition: i32,
    /// The high watermark: the offset of the next message to be written.
    pub high: i64,
    /// Where reading starts: the committed offset, else the low watermark;
    /// None when unknown.
    pub start: Option<i64>,
}

#[derive(Debug)]
struct Partition {
    end: BacklogEnd,
    /// Part of the start-up catch-up (first assignment).
    startup: bool,
    assigned: bool,
    start: Option<i64>,
    /// The offset after the last message stored.
    next: Option<i64>,
    /// Assigned or last delivered a message.
    last_seen: Timestamp,
    done: bool,
}

impl Partition {
    fn reached_end(&self) -> bool {
        match self.end {
            BacklogEnd::Offset(end) => self.next.or(self.start).is_some_and(|at| at >= end),
            BacklogEnd::Before(_) => false,
        }
    }

    fn remaining(&self) -> i64 {
        match (self.end, self.next.or(self.start)) {
            (BacklogEnd::Offset(end), Some(at)) if !self.done => (end - at).max(0),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Episode {
    began_at: Timestamp,
    ended_at: Option<Timestamp>,
    /// When a backlog message was last stored.
    progress_at: Timestamp,
    backlog: i64,
    consumed: i64,
    oldest_age_ms: Option<i64>,
    partitions: i64,
}

/// The catch-up of one consumer. Pure: the ingest feeds it assignments,
/// received and stored messages and idle ticks, with the time.
#[derive(Debug, Default)]
pub struct CatchUp {
    partitions: BTreeMap<String, BTreeMap<i32, Partition>>,
    /// When the consumer got its first partitions.
    started_at: Option<Timestamp>,
    episode: Option<Episode>,
    revoked_at: Option<Timestamp>,
}

impl CatchUp {
    /// Whether the consumer already had its first assignment (later ones
    /// need no watermarks).
    pub fn started(&self) -> bool {
        self.started_at.is_some()
    }

    /// When the consumer got past the backlog it found at start: None
    /// before its first assignment and while it catches up; the first
    /// assignment's time when there was nothing to catch up.
    pub fn caught_up_at(&self) -> Option<Timestamp> {
        match &self.episode {
            Some(episode) => episode.ended_at,
            None => self.started_at,
        }
    }

    /// Partitions assigned to this consumer now.
    pub fn assigned_partitions(&self) -> usize {
        self.partitions
            .values()
            .flat_map(BTreeMap::values)
            .filter(|p| p.assigned)
            .count()
    }

    fn get_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        self.partitions.get_mut(topic)?.get_mut(&partition)
    }

    /// Partitions assigned. `marks` are the watermarks read for the first
    /// assignment (a partition without them falls back to timestamps).
    pub fn assigned(
        &mut self,
        partitions: &[(String, i32)],
        marks: &[PartitionMarks],
        now: Timestamp,
    ) {
        let first = self.started_at.is_none();
        let started_at = *self.started_at.get_or_insert(now);
        let mut backlog = 0;
        let mut count = 0;
        let mut open = false;
        for (topic, partition) in partitions {
            let by_topic = self.partitions.entry(topic.clone()).or_default();
            if let Some(known) = by_topic.get_mut(partition) {
                known.assigned = true;
                known.last_seen = now;
                continue;
            }
            let mark = marks
                .iter()
                .find(|m| m.partition == *partition && m.topic == *topic);
            let mut p = Partition {
                end: match mark {
                    Some(m) => BacklogEnd::Offset(m.high),
                    None => BacklogEnd::Before(started_at),
                },
                startup: first,
                assigned: true,
                start: mark.and_then(|m| m.start),
                next: None,
                last_seen: now,
                done: false,
            };
            p.done = p.reached_end();
            if first {
                count += 1;
                open |= !p.done;
                if let (Some(m), Some(start)) = (mark, p.start) {
                    backlog += (m.high - start).max(0);
                }
            }
            by_topic.insert(*partition, p);
        }
        if first && open {
            self.episode = Some(Episode {
                began_at: now,
                ended_at: None,
                progress_at: now,
                backlog,
                consumed: 0,
                oldest_age_ms: None,
                partitions: count,
            });
        }
    }

    /// Partitions revoked: they keep their boundary should they come back.
    pub fn revoked(&mut self, partitions: &[(String, i32)], now: Timestamp) {
        for (topic, partition) in partitions {
            if let Some(p) = self.get_mut(topic, *partition) {
                p.assigned = false;
            }
        }
        self.revoked_at = Some(now);
    }

    /// A message just received: whether it is backlog.
    pub fn classify(
        &mut self,
        coords: &KafkaCoords,
        timestamp: Option<Timestamp>,
        now: Timestamp,
    ) -> bool {
        let Some(p) = self.get_mut(&coords.topic, coords.partition) else {
            return false;
        };
        p.last_seen = now;
        match p.end {
            BacklogEnd::Offset(end) => coords.offset < end,
            BacklogEnd::Before(at) => {
                if timestamp.is_some_and(|t| t < at) {
                    true
                } else {
                    p.end = BacklogEnd::Offset(coords.offset);
                    false
                }
            }
        }
    }

    /// Messages stored (the batch committed): (coordinates, Kafka
    /// timestamp, backlog), all ingested at `ingested_at`.
    pub fn stored<'a>(
        &mut self,
        messages: impl IntoIterator<Item = (&'a KafkaCoords, Option<Timestamp>, bool)>,
        ingested_at: Timestamp,
        now: Timestamp,
    ) {
        for (coords, timestamp, backlog) in messages {
            let Some(p) = self
                .partitions
                .get_mut(coords.topic.as_str())
                .and_then(|t| t.get_mut(&coords.partition))
            else {
                continue;
            };
            let fresh = p.next.is_none_or(|next| coords.offset >= next);
            p.next = Some(
                p.next
                    .map_or(coords.offset + 1, |n| n.max(coords.offset + 1)),
            );
            if !p.startup {
                continue;
            }
            let Some(episode) = self.episode.as_mut() else {
                continue;
            };
            if backlog && fresh {
                episode.consumed += 1;
                episode.progress_at = now;
                if let Some(t) = timestamp {
                    let age = (ingested_at - t).num_milliseconds().max(0);
                    episode.oldest_age_ms = Some(episode.oldest_age_ms.map_or(age, |o| o.max(age)));
                }
                // Taken for done while quiet, yet more came: not done.
                if p.done && !p.reached_end() {
                    p.done = false;
                    episode.ended_at = None;
                }
            }
            if !p.done && p.reached_end() {
                p.done = true;
            }
        }
        self.finish_if_done(now);
    }

    /// Checked every second by the consumer loop: a start-up
    /// partition that delivered nothing for [`QUIET`] has no backlog left.
    pub fn idle(&mut self, now: Timestamp) {
        for p in self.partitions.values_mut().flat_map(BTreeMap::values_mut) {
            if p.startup && p.assigned && !p.done && now - p.last_seen >= QUIET {
                p.done = true;
            }
        }
        self.finish_if_done(now);
    }

    fn finish_if_done(&mut self, now: Timestamp) {
        let Some(episode) = self.episode.as_mut().filter(|e| e.ended_at.is_none()) else {
            return;
        };
        let mut assigned = self
            .partitions
            .values()
            .flat_map(BTreeMap::values)
            .filter(|p| p.startup && p.assigned)
            .peekable();
        let none_assigned = assigned.peek().is_none();
        if !assigned.all(|p| p.done) {
            return;
        }
        // Between an eager revoke and the next assignment nothing is
        // assigned: that is not the end of the catch-up.
        if none_assigned && self.revoked_at.is_none_or(|at| now - at < QUIET) {
            return;
        }
        episode.ended_at = Some(episode.progress_at.max(episode.began_at));
    }

    /// The report, if the consumer had a backlog to catch up with.
    pub fn view(&self, now: Timestamp) -> Option<IngestCatchUp> {
        let e = self.episode.as_ref()?;
        let remaining: i64 = match e.ended_at {
            Some(_) => 0,
            None => self
                .partitions
                .values()
                .flat_map(BTreeMap::values)
                .filter(|p| p.startup && p.assigned)
                .map(Partition::remaining)
                .sum(),
        };
        Some(IngestCatchUp {
            state: match e.ended_at {
                Some(_) => CatchUpState::CaughtUp,
                None => CatchUpState::CatchingUp,
            },
            began_at: e.began_at,
            ended_at: e.ended_at,
            duration_ms: (e.ended_at.unwrap_or(now) - e.began_at)
                .num_milliseconds()
                .max(0),
            backlog: e.backlog.max(e.consumed + remaining),
            consumed: e.consumed,
            remaining,
            oldest_age_ms: e.oldest_age_ms,
            partitions: e.partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn coords(topic: &str, partition: i32, offset: i64) -> KafkaCoords {
        KafkaCoords {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    fn marks(topic: &str, partition: i32, start: i64, high: i64) -> PartitionMarks {
        PartitionMarks {
            topic: topic.into(),
            partition,
            high,
            start: Some(start),
        }
    }

    fn tp(topic: &str, partition: i32) -> (String, i32) {
        (topic.to_string(), partition)
    }

    /// Receives and stores `offsets` of one partition in one batch.
    fn read(
        c: &mut CatchUp,
        topic: &str,
        partition: i32,
        offsets: std::ops::Range<i64>,
        stamped: Timestamp,
        now: Timestamp,
    ) -> Vec<bool> {
        let messages: Vec<KafkaCoords> = offsets.map(|o| coords(topic, partition, o)).collect();
        let flags: Vec<bool> = messages
            .iter()
            .map(|m| c.classify(m, Some(stamped), now))
            .collect();
        c.stored(
            messages
                .iter()
                .zip(&flags)
                .map(|(m, b)| (m, Some(stamped), *b)),
            now,
            now,
        );
        flags
    }

    #[test]
    fn offsets_below_the_high_watermark_of_the_first_assignment_are_backlog() {
        let mut c = CatchUp::default();
        assert!(!c.started());
        c.assigned(
            &[tp("a", 0), tp("a", 1), tp("b", 0)],
            &[
                marks("a", 0, 10, 110),
                marks("a", 1, 0, 50),
                marks("b", 0, 7, 7),
            ],
            at(0),
        );
        assert!(c.started());
        let v = c.view(at(1)).unwrap();
        assert_eq!(v.state, CatchUpState::CatchingUp);
        assert_eq!(
            (v.backlog, v.consumed, v.remaining, v.partitions),
            (150, 0, 150, 3)
        );
        assert_eq!(v.summary(), "Catching up: 150 messages behind");

        // a/0: 10..110 are history (stamped 30 min before), 110 is new.
        let flags = read(&mut c, "a", 0, 10..111, at(-1800), at(2));
        assert!(flags[..100].iter().all(|b| *b));
        assert!(!flags[100]);
        let v = c.view(at(2)).unwrap();
        assert_eq!((v.consumed, v.remaining), (100, 50));
        assert_eq!(v.oldest_age_ms, Some(1_802_000));

        // A redelivery (after a rebalance) is not counted twice.
        read(&mut c, "a", 0, 100..110, at(-1800), at(3));
        assert_eq!(c.view(at(3)).unwrap().consumed, 100);

        read(&mut c, "a", 1, 0..50, at(-60), at(4));
        let v = c.view(at(10)).unwrap();
        assert_eq!(v.state, CatchUpState::CaughtUp);
        assert_eq!((v.backlog, v.consumed, v.remaining), (150, 150, 0));
        assert_eq!(v.ended_at, Some(at(4)));
        assert_eq!(c.caught_up_at(), Some(at(4)));
        assert_eq!(v.duration_ms, 4_000);
        assert_eq!(
            v.summary(),
            "Caught up with 150 messages of history in 4.0 s"
        );
    }

    #[test]
    fn partitions_assigned_later_excuse_only_what_was_stamped_before_the_start() {
        let mut c = CatchUp::default();
        c.assigned(&[tp("a", 0)], &[marks("a", 0, 0, 2)], at(0));
        read(&mut c, "a", 0, 0..2, at(-10), at(1));
        assert_eq!(c.view(at(1)).unwrap().state, CatchUpState::CaughtUp);
        // An hour later another replica stops: its partition comes here
        // with an hour-old message (history) and ten minutes of waiting
        // messages (real lag, not excused).
        c.assigned(&[tp("a", 1)], &[], at(3600));
        let m = coords("a", 1, 40);
        assert!(c.classify(&m, Some(at(-5)), at(3601)));
        let m = coords("a", 1, 41);
        assert!(!c.classify(&m, Some(at(3000)), at(3601)));
        // From the first non-backlog message on, the offset decides.
        let m = coords("a", 1, 42);
        assert!(!c.classify(&m, Some(at(-5)), at(3601)));
        // The start-up report is unchanged.
        let v = c.view(at(3601)).unwrap();
        assert_eq!((v.consumed, v.partitions), (2, 1));
        // A partition assigned again keeps its boundary: a/0 had none left.
        c.revoked(&[tp("a", 0), tp("a", 1)], at(3700));
        c.assigned(&[tp("a", 0)], &[], at(3701));
        assert!(!c.classify(&coords("a", 0, 5), Some(at(-10)), at(3702)));
        assert!(c.classify(&coords("a", 0, 1), Some(at(-10)), at(3702)));
    }

    #[test]
    fn an_unreadable_watermark_falls_back_to_the_start_time() {
        let mut c = CatchUp::default();
        c.assigned(&[tp("a", 0)], &[], at(0));
        assert!(c.classify(&coords("a", 0, 3), Some(at(-100)), at(1)));
        assert!(!c.classify(&coords("a", 0, 4), Some(at(1)), at(1)));
        c.stored(
            [
                (&coords("a", 0, 3), Some(at(-100)), true),
                (&coords("a", 0, 4), Some(at(1)), false),
            ],
            at(1),
            at(1),
        );
        let v = c.view(at(2)).unwrap();
        assert_eq!(v.state, CatchUpState::CaughtUp);
        assert_eq!(
            (v.backlog, v.consumed, v.oldest_age_ms),
            (1, 1, Some(101_000))
        );
    }

    #[test]
    fn nothing_to_catch_up_reports_nothing() {
        let mut c = CatchUp::default();
        assert_eq!(c.caught_up_at(), None);
        c.assigned(&[tp("a", 0)], &[marks("a", 0, 5, 5)], at(0));
        assert_eq!(c.view(at(1)), None);
        assert_eq!(c.caught_up_at(), Some(at(0)));
        assert!(!c.classify(&coords("a", 0, 5), Some(at(0)), at(1)));
    }

    #[test]
    fn a_quiet_partition_is_done_once_the_consumer_is_idle() {
        // The last offsets of a/0 are transaction markers: 98 and 99 never
        // arrive as messages.
        let mut c = CatchUp::default();
        c.assigned(
            &[tp("a", 0), tp("a", 1)],
            &[marks("a", 0, 0, 100), marks("a", 1, 0, 3)],
            at(0),
        );
        read(&mut c, "a", 0, 0..98, at(-10), at(1));
        read(&mut c, "a", 1, 0..3, at(-10), at(1));
        c.idle(at(4));
        assert_eq!(c.view(at(4)).unwrap().remaining, 2);
        c.idle(at(7));
        let v = c.view(at(8)).unwrap();
        assert_eq!(v.state, CatchUpState::CaughtUp);
        assert_eq!((v.consumed, v.remaining, v.ended_at), (101, 0, Some(at(1))));
        // Taken for done too early: more backlog reopens the catch-up.
        let mut c = CatchUp::default();
        c.assigned(&[tp("a", 0)], &[marks("a", 0, 0, 10)], at(0));
        c.idle(at(6));
        assert_eq!(c.view(at(6)).unwrap().state, CatchUpState::CaughtUp);
        read(&mut c, "a", 0, 0..5, at(-10), at(7));
        assert_eq!(c.view(at(7)).unwrap().state, CatchUpState::CatchingUp);
        read(&mut c, "a", 0, 5..10, at(-10), at(8));
        assert_eq!(c.view(at(8)).unwrap().ended_at, Some(at(8)));
    }

    #[test]
    fn an_eager_rebalance_mid_catch_up_does_not_end_it() {
        let mut c = CatchUp::default();
        c.assigned(&[tp("a", 0)], &[marks("a", 0, 0, 10)], at(0));
        read(&mut c, "a", 0, 0..4, at(-10), at(1));
        c.revoked(&[tp("a", 0)], at(2));
        c.idle(at(3));
        assert_eq!(c.view(at(3)).unwrap().state, CatchUpState::CatchingUp);
        c.assigned(&[tp("a", 0)], &[], at(3));
        read(&mut c, "a", 0, 4..10, at(-10), at(4));
        let v = c.view(at(5)).unwrap();
        assert_eq!(
            (v.state, v.consumed, v.duration_ms),
            (CatchUpState::CaughtUp, 10, 4_000)
        );
    }
}
