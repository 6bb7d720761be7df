//! `tongxing bench`: measurements for docs/PERFORMANCE.md.

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
