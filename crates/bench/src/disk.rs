//! In-process disk bandwidth probe: writes a temporary file in 1 MiB blocks and
//! calls `fdatasync` once at the end, the equivalent of
//! `dd if=/dev/urandom of=FILE bs=1M count=N oflag=direct conv=fdatasync`,
//! then deletes it. The produce rate of an `acks=all` broker that syncs
//! before acknowledging is bounded by this figure, so the report prints the
//! ratio to it.
//!
//! The blocks go around the page cache (O_DIRECT) where the filesystem
//! allows it, so that the figure is the disk's. Through the page cache it
//! can be the memory's instead: on the project's virtual machine, where a
//! page not used for a while is costly to take again (the host appears to
//! take free memory back), the same dd measured 450 MB/s on such pages and
//! 1.4 GB/s on pages just freed (the disk's own rate, by O_DIRECT) minutes
//! apart (docs/performance.md, session 9).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::payload::Rng;

/// Size of one write, as `dd bs=1M`.
const BLOCK: usize = 1 << 20;
/// O_DIRECT wants the buffer aligned to the device's logical block; 4 KiB
/// covers the disks we know of.
const ALIGN: usize = 4096;

/// Disk probe options shared by all subcommands.
#[derive(Args, Debug, Clone)]
pub struct DiskArgs {
    /// MiB the disk probe writes and fdatasyncs before the benchmark (0 disables it).
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub disk_probe_mb: u64,

    /// Directory for the disk probe's temporary file; use the broker's data disk.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub disk_dir: PathBuf,
}

/// The outcome of one probe.
#[derive(Debug, Clone)]
pub struct DiskProbe {
    /// Directory the file was written in.
    pub dir: PathBuf,
    /// Bytes written (and synced).
    pub bytes: u64,
    /// Time from the first write to the end of `fdatasync`.
    pub elapsed: Duration,
    /// Whether the blocks went around the page cache (O_DIRECT); false
    /// where the filesystem refuses it.
    pub direct: bool,
}

impl DiskProbe {
    /// Write bandwidth in MB/s (10^6 bytes per second, as dd reports it).
    pub fn mb_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / 1e6 / secs
        } else {
            0.0
        }
    }
}

/// Runs the probe the options ask for, or none when `--disk-probe-mb 0`.
pub fn probe_from_args(args: &DiskArgs) -> anyhow::Result<Option<DiskProbe>> {
    if args.disk_probe_mb == 0 {
        return Ok(None);
    }
    let probe = probe(&args.disk_dir, args.disk_probe_mb)
        .with_context(|| format!("disk probe in {}", args.disk_dir.display()))?;
    Ok(Some(probe))
}

/// Writes `mib` MiB in 1 MiB blocks to a new file in `dir`, fdatasyncs it,
/// deletes it and returns the bandwidth.
pub fn probe(dir: &Path, mib: u64) -> io::Result<DiskProbe> {
    let path = dir.join(format!(
        ".sluice-bench-disk-probe-{}-{:016x}",
        std::process::id(),
        Rng::from_clock().next_u64()
    ));
    let guard = RemoveOnDrop(&path);
    let (file, direct) = open_probe_file(&path)?;
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());

    // Random blocks, so a compressing or deduplicating filesystem cannot cheat;
    // each block differs from the last by its first word.
    let mut buffer = vec![0u8; BLOCK + ALIGN];
    let offset = buffer.as_ptr().align_offset(ALIGN);
    let block = &mut buffer[offset..offset + BLOCK];
    let mut rng = Rng::from_clock();
    rng.fill_bytes(block);

    let start = Instant::now();
    write_blocks(file, block, mib, &mut rng)?;
    let elapsed = start.elapsed();
    drop(guard);

    Ok(DiskProbe {
        dir,
        bytes: mib * BLOCK as u64,
        elapsed,
        direct,
    })
}

/// Creates the probe's file, opened with O_DIRECT if the filesystem
/// allows it; says which.
fn open_probe_file(path: &Path) -> io::Result<(File, bool)> {
    let direct = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path);
    match direct {
        Ok(file) => Ok((file, true)),
        // The file may exist by now: the flag is checked after creating it.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)?;
            Ok((file, false))
        }
        Err(e) => Err(e),
    }
}

fn write_blocks(mut file: File, block: &mut [u8], mib: u64, rng: &mut Rng) -> io::Result<()> {
    for _ in 0..mib {
        block[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        file.write_all(block)?;
    }
    file.sync_data()
}

/// Deletes the probe file however the probe ends.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_writes_syncs_and_removes_its_file() {
        let dir = std::env::temp_dir().join(format!("sluice-bench-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let probe = probe(&dir, 4).unwrap();
        assert_eq!(probe.bytes, 4 << 20);
        assert!(probe.mb_per_s() > 0.0, "rate {}", probe.mb_per_s());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "probe file left behind"
        );
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn zero_disables_the_probe() {
        let args = DiskArgs {
            disk_probe_mb: 0,
            disk_dir: PathBuf::from("/nonexistent"),
        };
        assert!(probe_from_args(&args).unwrap().is_none());
    }

    #[test]
    fn missing_directory_is_an_error() {
        assert!(probe(Path::new("/nonexistent/sluice-bench"), 1).is_err());
    }
}
