//! Tar archives for moving files in and out of a sandbox.
//!
//! Backends whose sandboxes are not on the host's filesystem move files as tar streams: the
//! Docker Engine's archive API, and a Kubernetes exec running `tar`, take and give the same
//! format. The local backend copies through its bind mounts and needs none of this.

use std::io;
use std::path::Path;

/// Packs the host file or directory `source` so that it extracts at `dest` (an absolute
/// path) when the archive is unpacked at `/`. Whoever unpacks it creates the parents.
pub fn pack(source: &Path, dest: &str) -> io::Result<Vec<u8>> {
    let name = dest.trim_start_matches('/');
    if name.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot upload onto /"));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let meta = std::fs::metadata(source)?;
    if meta.is_dir() {
        builder.append_dir_all(name, source)?;
    } else {
        builder.append_path_with_name(source, name)?;
    }
    builder.into_inner()
}

/// Unpacks an archive of one sandbox path SOURCE, its entries named after SOURCE's last
/// component (as `GET /containers/{id}/archive?path=SOURCE` and `tar -C parent name` give
/// them), to `dest`: that component becomes `dest`, replacing what was there.
pub fn unpack(archive: &[u8], dest: &Path) -> io::Result<()> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::tempdir_in(parent)?;
    let mut tar = tar::Archive::new(archive);
    tar.set_preserve_permissions(true);
    tar.set_overwrite(true);
    tar.unpack(staging.path())?;
    let mut entries = std::fs::read_dir(staging.path())?;
    let top = entries.next().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "empty archive"))??;
    if dest.exists() {
        if dest.is_dir() {
            std::fs::remove_dir_all(dest)?;
        } else {
            std::fs::remove_file(dest)?;
        }
    }
    std::fs::rename(top.path(), dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_then_unpack_round_trips_a_directory() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/f.txt"), "hello").unwrap();
        let bytes = pack(&src.path().join("a"), "/logs/verifier").unwrap();
        // Docker's GET archive answers with entries named after the last component.
        let mut rebuilt = tar::Builder::new(Vec::new());
        rebuilt.append_dir_all("verifier", src.path().join("a")).unwrap();
        let out = tempfile::tempdir().unwrap();
        unpack(&rebuilt.into_inner().unwrap(), &out.path().join("copy")).unwrap();
        assert_eq!(std::fs::read_to_string(out.path().join("copy/b/f.txt")).unwrap(), "hello");
        let names: Vec<String> = tar::Archive::new(&bytes[..]).entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert!(names.contains(&"logs/verifier/b/f.txt".to_string()), "{names:?}");
    }
}
