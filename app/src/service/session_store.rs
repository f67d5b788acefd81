//! The tower-sessions store on our own database (SQLite or PostgreSQL), so a restart or another node keeps
//! everyone signed in.
use super::now_ms;
use crate::repo;
use crate::state::Db;
use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use tower_sessions::SessionStore;

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn encode(record: &Record) -> Result<(String, String, i64)> {
    let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
    let expiry = (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64;
    Ok((record.id.to_string(), data, expiry))
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        for _ in 0..8 {
            let (id, data, expiry) = encode(record)?;
            if repo::sessions::http_create(&self.db, &id, &data, expiry).await.map_err(backend)? {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(Error::Backend("could not allocate a unique session id".into()))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let (id, data, expiry) = encode(record)?;
        repo::sessions::http_save(&self.db, &id, &data, expiry).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some((data, expiry)) = repo::sessions::http_load(&self.db, &id.to_string(), now_ms()).await.map_err(backend)? else {
            return Ok(None);
        };
        // A record that cannot be decoded is no session (a fresh one starts); only the database failing is an error,
        // which callers answer with 503, never with "not signed in".
        let (Ok(data), Ok(expiry_date)) =
            (serde_json::from_str(&data), time::OffsetDateTime::from_unix_timestamp_nanos(expiry as i128 * 1_000_000))
        else {
            tracing::warn!("undecodable session record ignored");
            return Ok(None);
        };
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        repo::sessions::http_delete(&self.db, &id.to_string()).await.map_err(backend)
    }
}
