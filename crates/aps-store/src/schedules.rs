//! Periodic backups (`apsctl schedule add/list/remove/run`): what to back up, how often, where,
//! and when it last ran and runs next.
//!
//! Main decision: the store keeps the plan and its last outcome, nothing else; running a due
//! schedule is the operations layer's job (`schedule run` for cron, the service later), which
//! records each run through [`Schedules::record_run`].

use std::path::PathBuf;

use rusqlite::{OptionalExtension, Row, params};

use crate::error::{Object, StoreError};
use crate::sql::{int, path_text};
use crate::{Store, Timestamp};

/// A periodic backup of one instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Its id (assigned on insert; ignored by [`Schedules::insert`]).
    pub id: i64,
    /// The instance backed up.
    pub instance: String,
    /// The period, in seconds.
    pub every_secs: u64,
    /// The folder the backups go to.
    pub to_dir: PathBuf,
    /// How many backups of the instance to keep in the folder (`None`: all).
    pub keep: Option<u32>,
    /// When the schedule was made.
    pub created_at: Timestamp,
    /// When it last ran.
    pub last_at: Option<Timestamp>,
    /// Why its last run failed (`None` after a success).
    pub last_error: Option<String>,
    /// When it is due next.
    pub next_at: Timestamp,
}

/// The schedule queries; from [`Store::schedules`].
#[derive(Debug, Clone, Copy)]
pub struct Schedules<'s> {
    store: &'s Store,
}

const COLUMNS: &str =
    "id, instance, every_secs, to_dir, keep, created_at, last_at, last_error, next_at";

impl<'s> Schedules<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Records a schedule and returns its id.
    pub fn insert(&self, schedule: &Schedule) -> Result<i64, StoreError> {
        let action = format!("add a backup schedule of instance `{}`", schedule.instance);
        self.store.write(&action, |c| {
            c.execute(
                "INSERT INTO schedules (instance, every_secs, to_dir, keep, created_at, last_at, \
                 last_error, next_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    schedule.instance,
                    int("schedule period", schedule.every_secs)?,
                    path_text(&schedule.to_dir)?,
                    schedule.keep,
                    schedule.created_at.unix_millis(),
                    schedule.last_at.map(Timestamp::unix_millis),
                    schedule.last_error,
                    schedule.next_at.unix_millis(),
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Every schedule, by id.
    pub fn list(&self) -> Result<Vec<Schedule>, StoreError> {
        self.store.read("list backup schedules", |c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM schedules ORDER BY id"))?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The schedules due at `now`, the longest overdue first.
    pub fn due(&self, now: Timestamp) -> Result<Vec<Schedule>, StoreError> {
        self.store.read("list due backup schedules", |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM schedules WHERE next_at <= ?1 ORDER BY next_at, id"
            ))?;
            let rows = stmt.query_map([now.unix_millis()], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The schedule `id`; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn get(&self, id: i64) -> Result<Schedule, StoreError> {
        let action = format!("read backup schedule {id}");
        self.store.read(&action, |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found(Object::Schedule(id)).into())
        })
    }

    /// Records a run of schedule `id` at `at` (with the error that ended it, if any) and when
    /// it is due next.
    pub fn record_run(
        &self,
        id: i64,
        at: Timestamp,
        error: Option<&str>,
        next_at: Timestamp,
    ) -> Result<(), StoreError> {
        let action = format!("record a run of backup schedule {id}");
        self.store.write(&action, |c| {
            let changed = c.execute(
                "UPDATE schedules SET last_at = ?2, last_error = ?3, next_at = ?4 WHERE id = ?1",
                params![id, at.unix_millis(), error, next_at.unix_millis()],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found(Object::Schedule(id)).into());
            }
            Ok(())
        })
    }

    /// Forgets schedule `id`.
    pub fn delete(&self, id: i64) -> Result<(), StoreError> {
        let action = format!("remove backup schedule {id}");
        self.store.write(&action, |c| {
            if c.execute("DELETE FROM schedules WHERE id = ?1", [id])? == 0 {
                return Err(StoreError::not_found(Object::Schedule(id)).into());
            }
            Ok(())
        })
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        id: row.get(0)?,
        instance: row.get(1)?,
        every_secs: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        to_dir: PathBuf::from(row.get::<_, String>(3)?),
        keep: row.get(4)?,
        created_at: Timestamp::from_unix_millis(row.get(5)?),
        last_at: row
            .get::<_, Option<i64>>(6)?
            .map(Timestamp::from_unix_millis),
        last_error: row.get(7)?,
        next_at: Timestamp::from_unix_millis(row.get(8)?),
    })
}
