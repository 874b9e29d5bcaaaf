//! The demo knowledge pack (`packs/telco/`: a fictional operator's plans, billing, roaming and
//! support pages), compiled into the crate so a binary copied anywhere still has it.
//! [`write_to`] puts it on disk for ingestion like any other folder.

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/demo_pack.rs"));

/// Writes the pack under `dir`: files whose bytes differ are rewritten, files that are not part
/// of the pack are removed, so ingesting `dir` incrementally sees exactly the embedded pack.
pub fn write_to(dir: &Path) -> std::io::Result<()> {
    for (relative, bytes) in FILES {
        let path = dir.join(relative);
        if std::fs::read(&path).is_ok_and(|existing| existing == *bytes) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    remove_others(dir, dir)
}

fn remove_others(root: &Path, dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            remove_others(root, &path)?;
            if std::fs::read_dir(&path)?.next().is_none() {
                std::fs::remove_dir(&path)?;
            }
            continue;
        }
        let relative = path.strip_prefix(root).ok().and_then(Path::to_str).map(|p| p.replace('\\', "/"));
        if !relative.is_some_and(|relative| FILES.iter().any(|(name, _)| *name == relative)) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pack_is_written_exactly_and_stale_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("billing").join("old-page.md");
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, "gone").unwrap();
        let changed = dir.path().join("billing").join("late-fees.md");
        std::fs::write(&changed, "edited by hand").unwrap();
        write_to(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(FILES.len() > 40, "the whole pack: {}", FILES.len());
        for (relative, bytes) in FILES {
            assert_eq!(std::fs::read(dir.path().join(relative)).unwrap(), *bytes, "{relative}");
        }
    }
}
