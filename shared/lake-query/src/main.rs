//! `splat-lake 'SQL'`: runs one query over the lake (views `transactions`, `spans`, `events`) with the
//! bundled DuckDB and prints tab-separated rows under a header. Reads `SPLAT_DATA_DIR` (default ./data) and,
//! with `SPLAT_BUCKET`, the S3 lake (files cached under the data folder's `lake-cache/`).

use splat::config::Config;
use splat::wiring::{blob_store, open_reader};
use splat_lake_query::{LakeQuery, LakeSource};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let sql = std::env::args().nth(1).filter(|s| !s.trim().is_empty());
    let Some(sql) = sql else {
        anyhow::bail!("usage: splat-lake 'SELECT name, count(*) FROM transactions GROUP BY name'");
    };
    let config = Config::from_env()?;
    let store = open_reader(&config).await?;
    let source = match config.bucket {
        Some(_) => LakeSource::Cached {
            blobs: blob_store(&config).await?,
            cache_dir: config.data_dir.join("lake-cache"),
        },
        None => LakeSource::Local(config.data_dir.clone()),
    };
    let answer = LakeQuery::open(&store, &source).await?.query(&sql)?;
    println!("{}", answer.columns.join("\t"));
    for row in answer.rows {
        let cells: Vec<&str> = row.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
        println!("{}", cells.join("\t"));
    }
    Ok(())
}
