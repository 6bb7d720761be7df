//! Embedded migrations, applied in order at start-up, each in its own transaction.
//! `schema_migrations` records what has run; on PostgreSQL an advisory lock keeps several
//! servers starting at once from racing. The list is the `migrations/` folders themselves,
//! embedded by `build.rs`: there is no hand-kept list to forget a file in.

use chrono::Utc;
use sqlx::{Pool, Postgres, Sqlite};

use crate::StoreError;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

pub(crate) async fn run_sqlite(pool: &Pool<Sqlite>) -> Result<(), StoreError> {
    sqlx::query(CREATE).execute(pool).await?;
    for &(version, name, sql) in SQLITE {
        let mut tx = pool.begin().await?;
        let done: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|source| StoreError::Migration { version, source })?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "migration applied");
    }
    Ok(())
}

pub(crate) async fn run_postgres(pool: &Pool<Postgres>) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(2021111700)").execute(&mut *tx).await?;
    sqlx::query(CREATE).execute(&mut *tx).await?;
    for &(version, name, sql) in POSTGRES {
        let done: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|source| StoreError::Migration { version, source })?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, name, "migration applied");
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every `.sql` file of the folders is embedded, in order.
    #[test]
    fn every_migration_file_is_embedded() {
        for (db, list) in [("sqlite", super::SQLITE), ("postgres", super::POSTGRES)] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(db);
            let mut files: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter_map(|n| n.strip_suffix(".sql").map(String::from))
                .collect();
            files.sort();
            let embedded: Vec<String> = list.iter().map(|(_, name, _)| name.to_string()).collect();
            assert_eq!(embedded, files, "{db}");
            assert!(list.iter().enumerate().all(|(i, (v, _, sql))| *v == i as i64 + 1 && !sql.is_empty()));
        }
    }
}
