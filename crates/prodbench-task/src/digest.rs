//! Content digests of directories: the identity of a task and the tag of its image.
//!
//! The digest covers each file's relative path, executable bit and bytes, in sorted order,
//! so it is stable across machines and checkouts and changes whenever anything a build could
//! see changes. Symlinks are hashed by their target text, not followed.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// sha256 (hex) of everything under `dir`. A missing directory hashes as empty.
pub fn digest_dir(dir: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    if dir.exists() {
        hash_tree(dir, dir, &mut hasher)?;
    }
    Ok(hex(&hasher.finalize()))
}

fn hash_tree(root: &Path, dir: &Path, hasher: &mut Sha256) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            hasher.update(format!("d\0{rel}\0"));
            hash_tree(root, &path, hasher)?;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            hasher.update(format!("l\0{rel}\0{}\0", target.to_string_lossy()));
        } else {
            let bytes = std::fs::read(&path)?;
            let exec = meta.permissions().mode() & 0o111 != 0;
            hasher.update(format!("f\0{rel}\0{exec}\0{}\0", bytes.len()));
            hasher.update(&bytes);
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
