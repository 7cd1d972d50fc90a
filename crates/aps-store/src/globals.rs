//! The saved values of packages' global settings (REFERENCE §8.2), one row per package identity
//! and setting id.
//!
//! Main decision: values belong to the package identity, not to one imported version, so a
//! later version sees what was saved for an earlier one; a save adds or replaces only the
//! settings it names, so values a version no longer declares stay for the versions that do.
//! Like instance settings, values are opaque here: the caller encodes them and seals secrets.

use rusqlite::params;

use crate::error::StoreError;
use crate::{Store, Timestamp};

/// One saved global setting value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GlobalSetting {
    /// The setting id.
    pub setting_id: String,
    /// The encoded value (sealed by the caller when `secret`).
    pub value: String,
    /// Whether the value is a secret (a password setting).
    pub secret: bool,
}

/// The global-settings queries; from [`Store::global_settings`].
#[derive(Debug, Clone, Copy)]
pub struct GlobalSettings<'s> {
    store: &'s Store,
}

impl<'s> GlobalSettings<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// The values saved for package identity `identity`, by setting id.
    pub fn get(&self, identity: &str) -> Result<Vec<GlobalSetting>, StoreError> {
        let action = format!("read the global settings of package `{identity}`");
        self.store.read(&action, |c| {
            let mut stmt = c.prepare_cached(
                "SELECT setting_id, value, is_secret FROM global_settings \
                 WHERE identity = ?1 ORDER BY setting_id",
            )?;
            let rows = stmt.query_map([identity], |row| {
                Ok(GlobalSetting {
                    setting_id: row.get(0)?,
                    value: row.get(1)?,
                    secret: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Saves each of `settings` for `identity` (adding or replacing it; other saved values
    /// stay), in one transaction.
    pub fn save(
        &self,
        identity: &str,
        settings: &[GlobalSetting],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let action = format!("save the global settings of package `{identity}`");
        self.store.write(&action, |c| {
            let mut stmt = c.prepare_cached(
                "INSERT INTO global_settings (identity, setting_id, value, is_secret, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (identity, setting_id) \
                 DO UPDATE SET value = excluded.value, is_secret = excluded.is_secret, \
                 updated_at = excluded.updated_at",
            )?;
            for s in settings {
                stmt.execute(params![
                    identity,
                    s.setting_id,
                    s.value,
                    s.secret,
                    at.unix_millis()
                ])?;
            }
            Ok(())
        })
    }
}
