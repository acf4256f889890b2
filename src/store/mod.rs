//! Stage 6 (beside `report`): analysed traffic in SQLite, for the dashboard and for later
//! queries. One database holds any number of capture runs.
//!
//! - [`schema`]: tables, indexes and `user_version` migrations;
//! - [`writer`]: one thread owns the write connection and batches inserts in transactions,
//!   fed through a bounded channel (blocking when full: offline runs never lose data);
//! - [`read`]: the queries the dashboard needs, on read-only connections.
//!
//! The database is in WAL mode, so readers never block the writer nor see half a batch;
//! every batch is one transaction, so a killed process leaves a consistent database whose
//! unfinished run has no `finished_wall`.

pub mod latency;
mod queue_bytes;
pub mod read;
pub mod schema;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

pub use read::Reader;
pub use writer::{Writer, WriterConfig, Written};

/// The row id of a capture run.
pub type RunId = i64;

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The SQLite error is part of the message rather than a `source`: its own chain would
    // repeat the same text.
    #[error("cannot open database {path}: {}", open_hint(path, error))]
    Open {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("database {path}: {error}")]
    Sql {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this wirelint understands ({supported}); use a newer wirelint or another --db"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "database {path} has schema version {found}, older than this wirelint reads ({supported}); write to it once (`wirelint analyze --db`) to migrate it"
    )]
    SchemaBehind {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("database {path}: the writer thread stopped")]
    WriterStopped { path: PathBuf },
}

impl StoreError {
    fn sql(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |error| StoreError::Sql {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// The most useful explanation of an open failure: SQLite only says "unable to open".
fn open_hint(path: &Path, error: &rusqlite::Error) -> String {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if path.is_dir() {
        "it is a directory".into()
    } else if parent.is_some_and(|p| !p.is_dir()) {
        format!(
            "its folder {} does not exist",
            parent
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        )
    } else {
        match error {
            rusqlite::Error::SqliteFailure(e, Some(msg)) => format!("{msg} ({:?})", e.code),
            other => other.to_string(),
        }
    }
}

/// What a run analysed.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum RunSource {
    /// Capture files, as given on the command line (indexed by `FrameRef::file`).
    Files { files: Vec<String> },
    /// A live interface.
    Live {
        interface: String,
        filter: Option<String>,
    },
}

impl RunSource {
    fn kind(&self) -> &'static str {
        match self {
            RunSource::Files { .. } => "files",
            RunSource::Live { .. } => "live",
        }
    }

    /// Capture file names by index (empty for live capture).
    pub fn file_names(&self) -> &[String] {
        match self {
            RunSource::Files { files } => files,
            RunSource::Live { .. } => &[],
        }
    }
}

/// A database opened for writing: migrated to the current schema.
pub struct Store {
    path: PathBuf,
    conn: Connection,
}

/// Opens a read-write connection with the settings every writer uses.
fn open_rw(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |error| StoreError::Open {
        path: path.to_path_buf(),
        error,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // WAL: readers and the writer do not block each other. NORMAL sync is safe in WAL
    // against a crash of the process (only a power loss may lose the last commits).
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode stayed {mode}, WAL is needed"
        ))));
    }
    // A 16 MiB page cache keeps the findings indexes' hot pages in memory (64 MiB took a
    // quarter of the process's default memory budget, which the SQLite cache is part of);
    // checkpoints every 8000 pages (32 MiB of WAL) copy each hot page once rather than
    // every 4 MiB.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 8000;",
    )
    .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to the current
    /// schema. Errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open_rw(&path)?;
        match schema::migrate(&mut conn).map_err(|error| StoreError::Open {
            path: path.clone(),
            error,
        })? {
            schema::Migrated::Applied(_) => Ok(Store { path, conn }),
            schema::Migrated::TooNew(found) => Err(StoreError::TooNew {
                path,
                found,
                supported: schema::VERSION,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn version(&self) -> Result<u32, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(StoreError::sql(&self.path))
    }

    /// Records the start of a run and returns its id.
    pub fn begin_run(&self, source: &RunSource) -> Result<RunId, StoreError> {
        let json = serde_json::to_string(source).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "INSERT INTO runs (kind, source, started_wall) VALUES (?1, ?2, ?3)",
                rusqlite::params![source.kind(), json, wall_nanos()],
            )
            .map_err(StoreError::sql(&self.path))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Starts the writer thread for a run begun with [`Store::begin_run`]. It opens its own
    /// connection, so one `Store` can start runs one after another.
    pub fn writer(&self, run: RunId, source: &RunSource) -> Result<Writer, StoreError> {
        self.writer_with(run, source, WriterConfig::default())
    }

    /// [`Store::writer`] with explicit settings (batch size, preview size, redaction).
    pub fn writer_with(
        &self,
        run: RunId,
        source: &RunSource,
        cfg: WriterConfig,
    ) -> Result<Writer, StoreError> {
        let conn = open_rw(&self.path)?;
        Ok(Writer::spawn(
            conn,
            self.path.clone(),
            run,
            source.file_names().to_vec(),
            cfg,
        ))
    }
}

/// Checkpoints `path` completely (`wal_checkpoint(TRUNCATE)`) and closes the connection.
/// When it is the last connection to the database, SQLite then deletes the `-wal` and
/// `-shm` files, so only the database file remains. Read-only connections (the
/// dashboard's) cannot do this on their own close, so whoever served them calls this once
/// they are all closed. Nothing happens when `path` does not exist.
pub fn checkpoint_and_close(path: &Path) -> Result<(), StoreError> {
    if !path.is_file() {
        return Ok(());
    }
    let open_err = |error| StoreError::Open {
        path: path.to_path_buf(),
        error,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(StoreError::sql(path))?;
    conn.close().map_err(|(_, e)| StoreError::sql(path)(e))
}

/// Wall-clock now in ns since the epoch.
pub(crate) fn wall_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
