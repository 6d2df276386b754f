//! Starting a new history file (`-r`, or every `--rotate-hours`) without ever losing the
//! one being written: the new file is made and filled first, and only then is the link
//! moved and the old file closed. A rotation that fails (a full disk, a folder that
//! cannot be written) gives back the store it was called on, still open, so the
//! collector goes on writing where it was.

use std::path::{Path, PathBuf};

use openmosix_hpc::model::NodeId;
use rusqlite::params;

use super::{Store, dated_name, point_link};
use crate::{Error, Result};

/// A failed rotation: why, and the store to go on with.
#[derive(Debug)]
pub struct RotateError {
    /// The store to keep writing: the one rotated, still open (or, when it could not be
    /// kept, the new one).
    pub store: Box<Store>,
    /// What went wrong.
    pub error: Error,
}

/// Removes a history file and its `-wal` and `-shm` beside it.
pub(super) fn remove_with_journal(file: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

impl Store {
    /// Starts a new history: the link moves to a new dated file, which gets the nodes
    /// and event seqs of this one. Returns the new store and the saved file.
    pub fn rotate(self) -> Result<(Store, PathBuf)> {
        self.try_rotate().map_err(|e| e.error)
    }

    /// As [`Store::rotate`], but a failure gives the store back to go on with.
    pub fn try_rotate(self) -> std::result::Result<(Store, PathBuf), RotateError> {
        let nodes = match self.node_rows() {
            Ok(n) => n,
            Err(error) => {
                return Err(RotateError {
                    store: Box::new(self),
                    error,
                });
            }
        };
        let link = self.link.clone();
        let adopted = self.file == link;
        let new_file = dated_name(&link, crate::now());
        let made = Self::open_at(&new_file, &link).and_then(|mut new| {
            // Named after the new file exists, so that the two names differ.
            let saved = if adopted {
                dated_name(&link, self.created)
            } else {
                self.file.clone()
            };
            new.snapshot_every = self.snapshot_every;
            new.fill_from(&nodes, &saved)?;
            Ok((new, saved))
        });
        let (new, saved) = match made {
            Ok(made) => made,
            Err(error) => {
                remove_with_journal(&new_file);
                return Err(RotateError {
                    store: Box::new(self),
                    error,
                });
            }
        };
        if adopted {
            return self.finish_adopted(new, &saved);
        }
        if let Err(error) = point_link(&link, &new_file) {
            drop(new);
            remove_with_journal(&new_file);
            return Err(RotateError {
                store: Box::new(self),
                error,
            });
        }
        self.close();
        Ok((new, saved))
    }

    /// The node table: (id, address, event seq).
    fn node_rows(&self) -> Result<Vec<(NodeId, String, i64)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, address, event_seq FROM nodes ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A new file's node table and its `previous`.
    fn fill_from(&mut self, nodes: &[(NodeId, String, i64)], saved: &Path) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT OR REPLACE INTO nodes (id, address, event_seq) VALUES (?1, ?2, ?3)",
            )?;
            for (id, address, seq) in nodes {
                st.execute(params![id, address, seq])?;
            }
        }
        let name = saved
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('previous', ?1)",
            [name],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Checkpoints the WAL into the file and closes it (the file is saved history now).
    fn close(self) {
        if let Err(e) = self.wal_checkpoint() {
            tracing::warn!("checkpoint before rotating: {e}");
        }
        if let Err((_, e)) = self.conn.close() {
            tracing::warn!("closing {}: {e}", self.file.display());
        }
    }

    /// A `--db` that is a regular file: closed, renamed to its dated name, and the link
    /// made in its place, pointing at `new`.
    fn finish_adopted(
        self,
        new: Store,
        saved: &Path,
    ) -> std::result::Result<(Store, PathBuf), RotateError> {
        let link = self.link.clone();
        self.close();
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", link.display()));
            if !from.exists() {
                continue;
            }
            let dest = PathBuf::from(format!("{}{suffix}", saved.display()));
            if let Err(e) = std::fs::rename(&from, &dest) {
                let error = Error::io(format!("cannot rename {}", from.display()), e);
                // Go on in the old file, as it was, if it opens again; else in the new one.
                let new_file = new.file.clone();
                return match Self::open_at(&link, &link) {
                    Ok(old) => {
                        drop(new);
                        remove_with_journal(&new_file);
                        Err(RotateError {
                            store: Box::new(old),
                            error,
                        })
                    }
                    Err(_) => Err(RotateError {
                        store: Box::new(new),
                        error,
                    }),
                };
            }
        }
        let new_file = new.file.clone();
        match point_link(&link, &new_file) {
            Ok(()) => Ok((new, saved.to_path_buf())),
            Err(error) => Err(RotateError {
                store: Box::new(new),
                error,
            }),
        }
    }
}
