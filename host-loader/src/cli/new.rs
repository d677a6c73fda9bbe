//! `twi new DIR`: scaffolds a payload crate (a workload for `twi build --payload DIR`).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;

use crate::payload;

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The directory to make (must not exist, or be empty).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The crate's name (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
}

pub fn execute(args: &NewArgs) -> Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{} names no directory: give --name", args.dir.display()))?,
    };
    payload::scaffold(&args.dir, &name)?;
    eprintln!(
        "twi: made the payload {name} in {dir}; build it with: twi build --payload {dir} --set target=https://HOST:PORT/PATH --set server-ca=CA.pem --out out/{name}",
        dir = args.dir.display()
    );
    Ok(())
}
