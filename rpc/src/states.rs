//! States that travel as words: typed inside, written exactly as the wire
//! protocol has always written them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{JobState, Phase};

/// Whether a dependency (PostgreSQL, the bucket) can be used: `ok` on the
/// wire, or the sentence that says why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// It answers.
    Ok,
    /// It cannot be used; the sentence says why.
    Down(String),
}

impl Reach {
    /// Whether it answers.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reach::Ok)
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reach::Ok => f.write_str("ok"),
            Reach::Down(why) => f.write_str(why),
        }
    }
}

impl Serialize for Reach {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reach {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(if text == "ok" { Reach::Ok } else { Reach::Down(text) })
    }
}

/// Where pre-warm stands for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warmth {
    /// Not looked at the bucket yet.
    Waiting,
    /// A user's job is in flight: pre-warm gives way.
    WaitingForUsers,
    /// Every restore slot is taken.
    WaitingForSlot,
    /// The template of the newest backup is being built.
    Building,
    /// The template of the newest backup is kept.
    Ready,
    /// `numikube_staging_template_cache = False`.
    Off,
    /// The bucket could not be read; the sentence says why.
    NoBackup(String),
    /// The last build failed or gave way; the sentence says why.
    NotReady(String),
}

const WAITING: &str = "waiting";
const WAITING_FOR_USERS: &str = "waiting for users' jobs";
const WAITING_FOR_SLOT: &str = "waiting for a restore slot";
const BUILDING: &str = "building";
const READY: &str = "ready";
const OFF: &str = "off (numikube_staging_template_cache = False)";
const NOT_READY: &str = "not ready: ";

impl fmt::Display for Warmth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warmth::Waiting => f.write_str(WAITING),
            Warmth::WaitingForUsers => f.write_str(WAITING_FOR_USERS),
            Warmth::WaitingForSlot => f.write_str(WAITING_FOR_SLOT),
            Warmth::Building => f.write_str(BUILDING),
            Warmth::Ready => f.write_str(READY),
            Warmth::Off => f.write_str(OFF),
            Warmth::NoBackup(why) => f.write_str(why),
            Warmth::NotReady(why) => write!(f, "{NOT_READY}{why}"),
        }
    }
}

impl Serialize for Warmth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Warmth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            WAITING => Warmth::Waiting,
            WAITING_FOR_USERS => Warmth::WaitingForUsers,
            WAITING_FOR_SLOT => Warmth::WaitingForSlot,
            BUILDING => Warmth::Building,
            READY => Warmth::Ready,
            OFF => Warmth::Off,
            _ => match text.strip_prefix(NOT_READY) {
                Some(why) => Warmth::NotReady(why.into()),
                None => Warmth::NoBackup(text),
            },
        })
    }
}

/// What a drop answers: always `done`, since a drop is answered once it is over.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DropStatus {
    /// The drop is over; `dropped`, `missing` and `refused` say what happened.
    #[default]
    Done,
}

impl JobState {
    /// The last phase of a job that ended in this state; `None` while running.
    pub fn last_phase(self) -> Option<Phase> {
        match self {
            JobState::Running => None,
            JobState::Done => Some(Phase::Done),
            JobState::Error => Some(Phase::Error),
        }
    }
}
