//! Embedded migrations, applied in order at start-up, each in its own transaction.
//! `schema_migrations` records what has run; on PostgreSQL an advisory lock keeps several
//! servers starting at once from racing.

use chrono::Utc;
use sqlx::{Pool, Postgres, Sqlite};

use crate::StoreError;

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_policies.sql")),
    (3, include_str!("../migrations/sqlite/0003_samples_by_week.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_policies.sql")),
    (3, include_str!("../migrations/postgres/0003_samples_by_week.sql")),
];

const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

pub(crate) async fn run_sqlite(pool: &Pool<Sqlite>) -> Result<(), StoreError> {
    sqlx::query(CREATE).execute(pool).await?;
    for &(version, sql) in SQLITE {
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
        tracing::info!(version, "migration applied");
    }
    Ok(())
}

pub(crate) async fn run_postgres(pool: &Pool<Postgres>) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(2021111700)").execute(&mut *tx).await?;
    sqlx::query(CREATE).execute(&mut *tx).await?;
    for &(version, sql) in POSTGRES {
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
        tracing::info!(version, "migration applied");
    }
    tx.commit().await?;
    Ok(())
}
