//! `tongxing rollup`: the flows kept from the entry events. `rebuild` empties them and counts
//! every event again (after a change to how they are counted, or to check them); `status` says
//! how far the job has come. A server running meanwhile waits for each pass's transaction and
//! goes on from where it left: nothing is counted twice.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;
use tongxing_store::Store;

#[derive(Subcommand)]
pub enum RollupCmd {
    /// Empty the rollups and count every entry event again; prints the time it took.
    Rebuild {
        /// sqlite://PATH or postgres://USER:PASS@HOST/DB.
        #[arg(long, default_value = crate::DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
        database: String,
    },
    /// The job's watermark against the newest entry event.
    Status {
        /// sqlite://PATH or postgres://USER:PASS@HOST/DB.
        #[arg(long, default_value = crate::DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
        database: String,
    },
}

pub async fn run(cmd: RollupCmd) -> Result<()> {
    match cmd {
        RollupCmd::Rebuild { database } => {
            let store = Store::connect(&database).await.with_context(|| format!("opening {database}"))?;
            let r = rebuild(&store).await;
            store.close().await;
            let (events, secs) = r?;
            println!(
                "rollup rebuild: {events} entry events counted in {secs:.1} s ({:.0} events/s)",
                events as f64 / secs.max(1e-9)
            );
            Ok(())
        }
        RollupCmd::Status { database } => {
            let store = Store::connect(&database).await.with_context(|| format!("opening {database}"))?;
            let (watermark, newest) = store.rollup_watermark().await?;
            store.close().await;
            println!("rollup: counted up to entry event {watermark} of {newest}");
            Ok(())
        }
    }
}

/// Empties the rollups and counts every event again; returns (events, seconds).
pub async fn rebuild(store: &Store) -> Result<(usize, f64)> {
    let app = tongxing_app::App::new(store.clone(), crate::load_policies(&[])?.policies);
    let start = Instant::now();
    store.rollup_reset().await?;
    let mut events = 0;
    loop {
        let run = app.rollup(chrono::Utc::now(), 100).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        events += run.events;
        if run.passes < 100 {
            break;
        }
        eprintln!("rollup rebuild: {events} events, {:.0}/s", events as f64 / start.elapsed().as_secs_f64());
    }
    Ok((events, start.elapsed().as_secs_f64()))
}
